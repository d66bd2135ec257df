-- sql.Find and sql.Cancel look jobs up by the pusher's id within a queue, waiting, reserved and
-- failed alike: one index on each table. InnoDB adds a secondary index in place, without
-- blocking pushes and claims.
ALTER TABLE rr_jobs ADD KEY rr_jobs_job_id (queue, job_id);
ALTER TABLE rr_failed_jobs ADD KEY rr_failed_jobs_job_id (queue, job_id);
