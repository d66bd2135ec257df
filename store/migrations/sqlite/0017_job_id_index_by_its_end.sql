-- rr_jobs' job id index holds the ids' last 12 characters instead of (queue, job_id). The PHP
-- client's ids are random UUIDs, so every push and every sweep wrote a random page of this index;
-- entries of a 36-character id and its queue filled 2.5 times the pages these do, and beside
-- 1M jobs they no longer fit the writer's page cache. The last characters of a UUID are random
-- (those of an id that counts up differ too), so ids seldom share a key; Find and Cancel match
-- the key for the index, then the queue and the whole id (see dialect.jobKey). rr_failed_jobs
-- keeps (queue, job_id): its rows are not written per job.
DROP INDEX IF EXISTS rr_jobs_job_id;
CREATE INDEX rr_jobs_job_id ON rr_jobs (substr(job_id, -12));
