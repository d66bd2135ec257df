-- Unique jobs: a job pushed with the header x-sql-unique-key is not created while a job of the same
-- queue holds that key. unique_key is the header's first value, NULL for jobs without it (so they
-- stay out of the index and their pushes pay nothing for it). The insert is
-- `ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING`. The key is given up
-- when the job reaches a worker (unique_while: waiting) or when its row is deleted (unique_while: active).
ALTER TABLE rr_jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX rr_jobs_unique ON rr_jobs (queue, unique_key) WHERE unique_key IS NOT NULL;
