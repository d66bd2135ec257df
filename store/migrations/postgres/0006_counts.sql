-- Exact counts without counting: every write to rr_jobs and rr_failed_jobs adjusts these rows in
-- the same statement (statement-level triggers, so a job inserted by hand or by an application's
-- own transaction is counted too, and a crash cannot leave a count behind its rows). A queue's
-- counts are the sums over its rows, whatever the backlog.
--
-- bucket: 0 for jobs that were due when queued (created_at, or queued_at after a requeue), else
-- the whole unix second from which they are due (their available_at rounded up), so that ready = waiting in buckets up to now and delayed =
-- waiting in later buckets. Past buckets are folded into bucket 0 now and then (sums unchanged).
-- stripe: the writing session's (backend pid modulo 8), so that sessions pushing or claiming at
-- once update different rows instead of queueing on one row lock until each commit.
-- When a requeue made the job wait again (NULL: never requeued, created_at tells).
ALTER TABLE rr_jobs ADD COLUMN queued_at BIGINT;

CREATE TABLE rr_job_counts (
    queue    TEXT    NOT NULL,
    bucket   BIGINT  NOT NULL,
    stripe   INTEGER NOT NULL,
    waiting  BIGINT  NOT NULL DEFAULT 0, -- ready or delayed
    reserved BIGINT  NOT NULL DEFAULT 0,
    failed   BIGINT  NOT NULL DEFAULT 0, -- rows of rr_failed_jobs (bucket 0)
    PRIMARY KEY (queue, bucket, stripe)
);
ALTER TABLE rr_job_counts SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- Each trigger applies the net change of one statement: zero sums skipped, keys in order (two
-- sessions sharing a stripe lock its rows in the same order: no deadlock between them).
CREATE FUNCTION rr_jobs_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_job_counts AS c (queue, bucket, stripe, waiting, reserved)
    SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, pg_backend_pid() % 8,
           count(*) FILTER (WHERE reserved_by IS NULL), count(*) FILTER (WHERE reserved_by IS NOT NULL)
    FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = c.waiting + excluded.waiting, reserved = c.reserved + excluded.reserved;
    -- Wake consumers on every node: one notification per statement and queue with a job due (within
    -- the second), delivered at commit; identical ones of a transaction are merged.
    PERFORM pg_notify('rr_jobs', queue) FROM (SELECT DISTINCT queue FROM new_rows
        WHERE available_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000) due;
    RETURN NULL;
END
$$;

CREATE FUNCTION rr_jobs_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_job_counts AS c (queue, bucket, stripe, waiting, reserved)
    SELECT queue, bucket, pg_backend_pid() % 8, sum(w), sum(r)
    FROM (SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END AS bucket,
                 (reserved_by IS NULL)::int AS w, (reserved_by IS NOT NULL)::int AS r FROM new_rows
          UNION ALL
          SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END,
                 -(reserved_by IS NULL)::int, -(reserved_by IS NOT NULL)::int FROM old_rows) d
    GROUP BY 1, 2 HAVING sum(w) <> 0 OR sum(r) <> 0 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = c.waiting + excluded.waiting, reserved = c.reserved + excluded.reserved;
    RETURN NULL;
END
$$;

CREATE FUNCTION rr_jobs_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_job_counts AS c (queue, bucket, stripe, waiting, reserved)
    SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, pg_backend_pid() % 8,
           -count(*) FILTER (WHERE reserved_by IS NULL), -count(*) FILTER (WHERE reserved_by IS NOT NULL)
    FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = c.waiting + excluded.waiting, reserved = c.reserved + excluded.reserved;
    RETURN NULL;
END
$$;

CREATE FUNCTION rr_failed_jobs_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rr_job_counts AS c (queue, bucket, stripe, failed)
        SELECT queue, 0, pg_backend_pid() % 8, count(*) FROM new_rows GROUP BY 1 ORDER BY 1
        ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
    ELSE
        INSERT INTO rr_job_counts AS c (queue, bucket, stripe, failed)
        SELECT queue, 0, pg_backend_pid() % 8, -count(*) FROM old_rows GROUP BY 1 ORDER BY 1
        ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
    END IF;
    RETURN NULL;
END
$$;

-- The notification moves into the statement trigger: no function call per inserted row.
DROP TRIGGER rr_jobs_notify ON rr_jobs;
DROP FUNCTION rr_jobs_notify();

-- Created in the migration's transaction, which locks rr_jobs against writes until it commits:
-- the first count below and the triggers see the same rows.
CREATE TRIGGER rr_jobs_count_insert AFTER INSERT ON rr_jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rr_jobs_count_insert();
CREATE TRIGGER rr_jobs_count_update AFTER UPDATE ON rr_jobs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rr_jobs_count_update();
CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rr_jobs_count_delete();
CREATE TRIGGER rr_failed_jobs_count_insert AFTER INSERT ON rr_failed_jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rr_failed_jobs_count();
CREATE TRIGGER rr_failed_jobs_count_delete AFTER DELETE ON rr_failed_jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rr_failed_jobs_count();

INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, 0,
       count(*) FILTER (WHERE reserved_by IS NULL), count(*) FILTER (WHERE reserved_by IS NOT NULL)
FROM rr_jobs GROUP BY 1, 2;
INSERT INTO rr_job_counts AS c (queue, bucket, stripe, failed)
SELECT queue, 0, 0, count(*) FROM rr_failed_jobs GROUP BY 1
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
