-- sql.Find and sql.Cancel look jobs up by the pusher's id within a queue, waiting, reserved and
-- failed alike: one index on each table. (Not partial: a job at a worker is found too.) Building
-- them holds writes to the tables until the migration commits: on a large backlog, run this
-- migration at a quiet time (or create the indexes CONCURRENTLY by hand first, same names).
CREATE INDEX IF NOT EXISTS rr_jobs_job_id ON rr_jobs (queue, job_id);
CREATE INDEX IF NOT EXISTS rr_failed_jobs_job_id ON rr_failed_jobs (queue, job_id);
