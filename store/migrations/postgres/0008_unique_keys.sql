-- Unique jobs: a job pushed with the header x-sql-unique-key is not created while a job of the same
-- queue holds that key. unique_key is the header's first value, NULL for jobs without it (so they
-- stay out of the index and their pushes pay nothing for it). The insert is
-- `ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING`: the index, not a read
-- before the insert, decides between nodes pushing at once. The key is given up when the job is
-- at a worker (unique_while: waiting) or when its row is deleted (unique_while: active).
-- Adding a nullable column without a default rewrites nothing; the index is built under a lock that
-- holds back writes to rr_jobs while it reads the table (every entry is NULL: nothing to store).
ALTER TABLE rr_jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX rr_jobs_unique ON rr_jobs (queue, unique_key) WHERE unique_key IS NOT NULL;
