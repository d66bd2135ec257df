-- Exact counts without counting: every write to rr_jobs and rr_failed_jobs adjusts these rows in
-- the same statement (triggers, so a job inserted by hand or by an application's own transaction
-- is counted too, and a crash cannot leave a count behind its rows). A queue's counts are the sums
-- over its rows, whatever the backlog.
--
-- bucket: 0 for jobs that were due when queued (created_at, or queued_at after a requeue), else
-- the whole unix second from which they are due (their available_at rounded up), so that ready = waiting in buckets up to now and delayed =
-- waiting in later buckets. Past buckets are folded into bucket 0 now and then (sums unchanged).
-- stripe: the writing connection's (its id modulo 8), so that connections pushing or claiming at
-- once update different rows instead of queueing on one row lock until each commit.
-- Each trigger is one statement (no BEGIN ... END: the migration is cut at semicolons) and is
-- dropped first, so that a migration cut short by a crash can run again.
-- When a requeue made the job wait again (NULL: never requeued, created_at tells).
ALTER TABLE rr_jobs ADD COLUMN queued_at BIGINT NULL;

CREATE TABLE IF NOT EXISTS rr_job_counts (
    queue    VARCHAR(255) NOT NULL,
    bucket   BIGINT       NOT NULL,
    stripe   INT          NOT NULL,
    waiting  BIGINT       NOT NULL DEFAULT 0,
    reserved BIGINT       NOT NULL DEFAULT 0,
    failed   BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, bucket, stripe)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS rr_jobs_count_insert;
CREATE TRIGGER rr_jobs_count_insert AFTER INSERT ON rr_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8,
            NEW.reserved_by IS NULL, NEW.reserved_by IS NOT NULL)
    ON DUPLICATE KEY UPDATE waiting = waiting + VALUES(waiting), reserved = reserved + VALUES(reserved);

DROP TRIGGER IF EXISTS rr_jobs_count_delete;
CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    VALUES (OLD.queue, IF(OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at), 0, (OLD.available_at + 999) DIV 1000), CONNECTION_ID() % 8,
            -(OLD.reserved_by IS NULL), -(OLD.reserved_by IS NOT NULL))
    ON DUPLICATE KEY UPDATE waiting = waiting + VALUES(waiting), reserved = reserved + VALUES(reserved);

-- A claim or a release keeps the row in its bucket: one row adjusted. A lease extension or a
-- delivery mark changes nothing here (the condition is false, nothing is written).
DROP TRIGGER IF EXISTS rr_jobs_count_update;
DROP TRIGGER IF EXISTS rr_jobs_count_reserve;
CREATE TRIGGER rr_jobs_count_reserve AFTER UPDATE ON rr_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    SELECT NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8,
           (NEW.reserved_by IS NULL) - (OLD.reserved_by IS NULL), (NEW.reserved_by IS NOT NULL) - (OLD.reserved_by IS NOT NULL)
    FROM DUAL
    WHERE (NEW.reserved_by IS NULL) <> (OLD.reserved_by IS NULL) AND NEW.queue = OLD.queue AND NEW.available_at = OLD.available_at
        AND COALESCE(NEW.queued_at, NEW.created_at) = COALESCE(OLD.queued_at, OLD.created_at)
    ON DUPLICATE KEY UPDATE waiting = rr_job_counts.waiting + VALUES(waiting), reserved = rr_job_counts.reserved + VALUES(reserved);

-- A requeue (new due time) or a move to another queue: out of one bucket, into another.
DROP TRIGGER IF EXISTS rr_jobs_count_move;
CREATE TRIGGER rr_jobs_count_move AFTER UPDATE ON rr_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
    SELECT OLD.queue, IF(OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at), 0, (OLD.available_at + 999) DIV 1000), CONNECTION_ID() % 8,
           -(OLD.reserved_by IS NULL), -(OLD.reserved_by IS NOT NULL)
    FROM DUAL
    WHERE NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at
        OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at)
    UNION ALL
    SELECT NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8,
           NEW.reserved_by IS NULL, NEW.reserved_by IS NOT NULL
    FROM DUAL
    WHERE NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at
        OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at)
    ON DUPLICATE KEY UPDATE waiting = rr_job_counts.waiting + VALUES(waiting), reserved = rr_job_counts.reserved + VALUES(reserved);

DROP TRIGGER IF EXISTS rr_failed_jobs_count_insert;
CREATE TRIGGER rr_failed_jobs_count_insert AFTER INSERT ON rr_failed_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, failed) VALUES (NEW.queue, 0, CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE failed = failed + 1;

DROP TRIGGER IF EXISTS rr_failed_jobs_count_delete;
CREATE TRIGGER rr_failed_jobs_count_delete AFTER DELETE ON rr_failed_jobs FOR EACH ROW
    INSERT INTO rr_job_counts (queue, bucket, stripe, failed) VALUES (OLD.queue, 0, CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE failed = failed - 1;

-- The jobs already queued, counted after the triggers exist (MySQL commits each DDL statement on
-- its own: stop pushing while this migration runs, or a push in between is counted twice).
DELETE FROM rr_job_counts;
INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved)
SELECT queue, IF(available_at <= COALESCE(queued_at, created_at), 0, (available_at + 999) DIV 1000), 0,
       SUM(reserved_by IS NULL), SUM(reserved_by IS NOT NULL)
FROM rr_jobs GROUP BY 1, 2;
INSERT INTO rr_job_counts (queue, bucket, stripe, failed)
SELECT queue, 0, 0, COUNT(*) FROM rr_failed_jobs GROUP BY queue
ON DUPLICATE KEY UPDATE failed = rr_job_counts.failed + VALUES(failed);
