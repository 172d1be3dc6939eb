-- R1 Lab store: every run is an experiment named by its content hash.
-- Tables are narrow and named for people writing SQL against them; views answer common questions.

-- Marks the file as an R1 Lab database ("R1LB"), so a foreign SQLite file is refused on open.
PRAGMA application_id = 1378962498;

-- One row per distinct experiment: its id is the blake3 hash of the resolved spec, its inputs'
-- ids and the numerics version. The spec is canonical JSON, queryable with json_extract().
CREATE TABLE experiments (
    id               TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    spec             TEXT    NOT NULL CHECK (json_valid(spec)),
    numerics_version INTEGER NOT NULL,
    created_at       TEXT    NOT NULL
) STRICT;

-- Lineage: which experiments an experiment was built from (parent checkpoint, data, teacher...).
CREATE TABLE lineage (
    child  TEXT NOT NULL REFERENCES experiments (id),
    parent TEXT NOT NULL REFERENCES experiments (id),
    role   TEXT NOT NULL,
    PRIMARY KEY (child, role)
) STRICT;
CREATE INDEX lineage_parent ON lineage (parent);

-- Each execution of an experiment. `result_digest` hashes what the attempt produced (metrics
-- other than wall-clock ones, artifact and checkpoint hashes) so reruns can be compared.
CREATE TABLE attempts (
    id            INTEGER NOT NULL PRIMARY KEY,
    experiment    TEXT    NOT NULL REFERENCES experiments (id),
    status        TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
    started_at    TEXT    NOT NULL,
    ended_at      TEXT,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    git_commit    TEXT,
    progress      REAL    CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1)),
    error         TEXT,
    result_digest TEXT
) STRICT;
CREATE INDEX attempts_experiment ON attempts (experiment, id);

-- Scalar time series. Names follow TRL where one exists (reward, kl, completions/mean_length).
-- Names starting with 'perf/' are wall-clock measurements and are not part of the result digest.
CREATE TABLE metrics (
    attempt INTEGER NOT NULL REFERENCES attempts (id),
    name    TEXT    NOT NULL,
    step    INTEGER NOT NULL,
    value   REAL    NOT NULL,
    PRIMARY KEY (attempt, name, step)
) STRICT;

-- Sampled texts: generations during training, examples of a data set, eval samples.
CREATE TABLE traces (
    attempt         INTEGER NOT NULL REFERENCES attempts (id),
    step            INTEGER NOT NULL,
    sample          INTEGER NOT NULL,
    prompt          TEXT    NOT NULL,
    completion      TEXT    NOT NULL,
    reward_parts    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(reward_parts)),
    language_scores TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(language_scores)),
    -- Labels for filtering: language, style, benchmark, prompting...
    meta            TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(meta)),
    PRIMARY KEY (attempt, step, sample)
) STRICT;

-- Model checkpoints. `hash` is blake3 over canonical tensor content; the file lives in the
-- object folder beside the database under that hash.
CREATE TABLE checkpoints (
    attempt INTEGER NOT NULL REFERENCES attempts (id),
    step    INTEGER NOT NULL,
    hash    TEXT    NOT NULL,
    path    TEXT    NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (attempt, step)
) STRICT;

-- Data sets and other files an attempt produced, addressed by the blake3 hash of their bytes.
CREATE TABLE artifacts (
    attempt INTEGER NOT NULL REFERENCES attempts (id),
    name    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    hash    TEXT    NOT NULL,
    path    TEXT    NOT NULL,
    rows    INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (attempt, name)
) STRICT;

-- The latest attempt of every experiment, with its status: "what is there and how did it go".
CREATE VIEW runs AS
SELECT e.id,
       substr(e.id, 1, 12) AS short_id,
       e.kind,
       e.name,
       a.id          AS attempt,
       a.status,
       a.progress,
       a.started_at,
       a.ended_at,
       a.host,
       a.git_commit,
       a.error,
       (SELECT count(*) FROM attempts x WHERE x.experiment = e.id) AS attempts,
       e.created_at
FROM experiments e
LEFT JOIN attempts a ON a.id = (SELECT max(id) FROM attempts x WHERE x.experiment = e.id);

-- The attempt whose results stand for an experiment: its first completed one.
CREATE VIEW results AS
SELECT e.id AS experiment, e.kind, e.name, min(a.id) AS attempt
FROM experiments e
JOIN attempts a ON a.experiment = e.id AND a.status = 'completed'
GROUP BY e.id;

-- Every metric point with its experiment: SELECT * FROM metric_points WHERE name = 'loss'.
CREATE VIEW metric_points AS
SELECT a.experiment, e.name AS experiment_name, m.attempt, m.name, m.step, m.value
FROM metrics m
JOIN attempts a ON a.id = m.attempt
JOIN experiments e ON e.id = a.experiment;

-- The last value of each metric of each experiment's standing result.
CREATE VIEW latest_metrics AS
SELECT r.experiment, r.name AS experiment_name, m.name, m.step, m.value
FROM results r
JOIN metrics m ON m.attempt = r.attempt
WHERE m.step = (SELECT max(step) FROM metrics x WHERE x.attempt = m.attempt AND x.name = m.name);
