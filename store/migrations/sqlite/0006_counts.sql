-- Exact counts without counting: every write to rr_jobs and rr_failed_jobs adjusts these rows in
-- the same statement (triggers, so a job inserted by hand or by an application's own transaction
-- is counted too, and a crash cannot leave a count behind its rows). A queue's counts are the sums
-- over its rows, whatever the backlog.
--
-- bucket: 0 for jobs that were due when queued (created_at, or queued_at after a requeue), else
-- the whole unix second from which they are due (their available_at rounded up), so that ready = waiting in buckets up to now and delayed =
-- waiting in later buckets. Past buckets are folded into bucket 0 now and then (sums unchanged).
-- stripe: 0 here (SQLite has one writer); PostgreSQL and MySQL spread writers over a few rows.
-- When a requeue made the job wait again (NULL: never requeued, created_at tells).
ALTER TABLE rr_jobs ADD COLUMN queued_at INTEGER;

CREATE TABLE rr_job_counts (
    queue    TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    stripe   INTEGER NOT NULL,
    waiting  INTEGER NOT NULL DEFAULT 0, -- ready or delayed
    reserved INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0, -- rows of rr_failed_jobs (bucket 0)
    PRIMARY KEY (queue, bucket, stripe)
) WITHOUT ROWID;

CREATE TRIGGER rr_jobs_count_insert AFTER INSERT ON rr_jobs BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (NEW.queue, CASE WHEN NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at) THEN 0 ELSE (NEW.available_at + 999) / 1000 END, 0,
            NEW.reserved_by IS NULL, NEW.reserved_by IS NOT NULL)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0,
            -(OLD.reserved_by IS NULL), -(OLD.reserved_by IS NOT NULL))
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
END;

-- A claim, a release, a requeue within the same second: the row stays in its bucket, one row adjusted.
CREATE TRIGGER rr_jobs_count_reserve AFTER UPDATE OF reserved_by ON rr_jobs
WHEN NEW.queue = OLD.queue AND NEW.available_at = OLD.available_at AND COALESCE(NEW.queued_at, NEW.created_at) = COALESCE(OLD.queued_at, OLD.created_at)
     AND (NEW.reserved_by IS NULL) <> (OLD.reserved_by IS NULL) BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (NEW.queue, CASE WHEN NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at) THEN 0 ELSE (NEW.available_at + 999) / 1000 END, 0,
            (NEW.reserved_by IS NULL) - (OLD.reserved_by IS NULL), (NEW.reserved_by IS NOT NULL) - (OLD.reserved_by IS NOT NULL))
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
END;

-- A requeue (new due time), a move to another queue: out of one bucket, into another.
CREATE TRIGGER rr_jobs_count_move AFTER UPDATE OF queue, available_at, created_at, queued_at ON rr_jobs
WHEN NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at) BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0,
            -(OLD.reserved_by IS NULL), -(OLD.reserved_by IS NOT NULL))
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (NEW.queue, CASE WHEN NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at) THEN 0 ELSE (NEW.available_at + 999) / 1000 END, 0,
            NEW.reserved_by IS NULL, NEW.reserved_by IS NOT NULL)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER rr_failed_jobs_count_insert AFTER INSERT ON rr_failed_jobs BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, failed) VALUES (NEW.queue, 0, 0, 1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed + 1;
END;

CREATE TRIGGER rr_failed_jobs_count_delete AFTER DELETE ON rr_failed_jobs BEGIN
    INSERT INTO rr_job_counts (queue, bucket, stripe, failed) VALUES (OLD.queue, 0, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed - 1;
END;

-- The jobs already queued.
INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, 0,
       SUM(reserved_by IS NULL), SUM(reserved_by IS NOT NULL)
FROM rr_jobs WHERE true GROUP BY 1, 2
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET waiting = waiting + excluded.waiting, reserved = reserved + excluded.reserved;
INSERT INTO rr_job_counts (queue, bucket, stripe, failed)
SELECT queue, 0, 0, COUNT(*) FROM rr_failed_jobs WHERE true GROUP BY 1
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed + excluded.failed;
