-- Evaluation results: the paper's protocol (pass@1 over k samples at T 0.6, top-p 0.95; cons@k)
-- per benchmark and prompting style.
CREATE TABLE evaluations (
    attempt   INTEGER NOT NULL REFERENCES attempts (id),
    benchmark TEXT    NOT NULL,
    prompting TEXT    NOT NULL,
    metric    TEXT    NOT NULL,
    k         INTEGER NOT NULL,
    value     REAL    NOT NULL,
    stderr    REAL,
    PRIMARY KEY (attempt, benchmark, prompting, metric, k)
) STRICT;

-- Every experiment's standing evaluation, one row per number:
-- SELECT benchmark, prompting, metric, value FROM eval_results WHERE name = 'base/eval'.
CREATE VIEW eval_results AS
SELECT r.experiment, r.name, r.kind, (SELECT l.parent FROM lineage l WHERE l.child = r.experiment AND l.role = 'model') AS model,
       ev.benchmark, ev.prompting, ev.metric, ev.k, ev.value, ev.stderr
FROM results r
JOIN evaluations ev ON ev.attempt = r.attempt;
