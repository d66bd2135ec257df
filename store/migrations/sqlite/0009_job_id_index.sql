-- sql.Find and sql.Cancel look jobs up by the pusher's id within a queue, waiting, reserved and
-- failed alike: one index on each table. (Not partial: a job at a worker is found too.)
CREATE INDEX rr_jobs_job_id ON rr_jobs (queue, job_id);
CREATE INDEX rr_failed_jobs_job_id ON rr_failed_jobs (queue, job_id);
