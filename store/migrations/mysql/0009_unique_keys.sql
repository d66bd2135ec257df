-- Unique jobs: a job pushed with the header x-sql-unique-key is not created while a job of the same
-- queue holds that key. unique_key is the header's first value, NULL for jobs without it: MySQL has
-- no partial index, but NULLs never collide in a UNIQUE index. The insert is
-- `ON DUPLICATE KEY UPDATE id = id` (not INSERT IGNORE, which turns other errors into warnings); the
-- count triggers see no change of queue or due time in such an update and write nothing. The key is
-- given up when the job reaches a worker (unique_while: waiting) or when its row is deleted
-- (unique_while: active). (queue, unique_key) in utf8mb4 is 2 × 255 × 4 = 2,040 bytes, under
-- InnoDB's 3,072-byte index key limit: keys longer than 255 characters are refused at push.
ALTER TABLE rr_jobs ADD COLUMN unique_key VARCHAR(255) NULL, ADD UNIQUE KEY rr_jobs_unique (queue, unique_key);
