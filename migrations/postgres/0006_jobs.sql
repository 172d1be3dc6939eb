-- Runs handed to a scheduler. An attempt that a scheduler's job runs records the job
-- ('slurm:1234'), so it can be cancelled through the scheduler; NULL for a process started here.
ALTER TABLE attempts ADD COLUMN job TEXT;

-- Jobs submitted for an experiment, before any attempt of it exists: what
-- `lab run --executor slurm` queued, so a pending job is not submitted twice and can be
-- withdrawn (`lab cancel`).
CREATE TABLE jobs (
    experiment   TEXT NOT NULL REFERENCES experiments (id),
    executor     TEXT NOT NULL,
    job          TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    PRIMARY KEY (executor, job)
);
CREATE INDEX jobs_experiment ON jobs (experiment);
