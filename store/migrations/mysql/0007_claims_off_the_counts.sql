-- Claims no longer write the counts. rr_counts replaces rr_job_counts: a job is counted in its
-- bucket from its insert to its delete, reserved or not (queued), so that a claim, a release, a
-- lease extension or a delivery mark writes no count row (the one update trigger left finds no
-- change of bucket and writes nothing). The reserved jobs are counted when the counts are read,
-- from rr_jobs_claim: as many as are in flight, whatever the backlog.
-- bucket and stripe as in 0006. Every statement can run again after a crash cut the migration
-- short; as with 0006, stop pushing while it runs (MySQL commits each DDL statement on its own).
CREATE TABLE IF NOT EXISTS rr_counts (
    queue  VARCHAR(255) NOT NULL,
    bucket BIGINT       NOT NULL,
    stripe INT          NOT NULL,
    queued BIGINT       NOT NULL DEFAULT 0,
    failed BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, bucket, stripe)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS rr_jobs_count_reserve;

DROP TRIGGER IF EXISTS rr_jobs_count_insert;
CREATE TRIGGER rr_jobs_count_insert AFTER INSERT ON rr_jobs FOR EACH ROW
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE queued = queued + 1;

DROP TRIGGER IF EXISTS rr_jobs_count_delete;
CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs FOR EACH ROW
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (OLD.queue, IF(OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at), 0, (OLD.available_at + 999) DIV 1000), CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE queued = queued - 1;

-- A requeue (new due time) or a move to another queue: out of one bucket, into another.
DROP TRIGGER IF EXISTS rr_jobs_count_move;
CREATE TRIGGER rr_jobs_count_move AFTER UPDATE ON rr_jobs FOR EACH ROW
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    SELECT OLD.queue, IF(OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at), 0, (OLD.available_at + 999) DIV 1000), CONNECTION_ID() % 8, -1
    FROM DUAL
    WHERE NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at
        OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at)
    UNION ALL
    SELECT NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8, 1
    FROM DUAL
    WHERE NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at
        OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at)
    ON DUPLICATE KEY UPDATE queued = rr_counts.queued + VALUES(queued);

DROP TRIGGER IF EXISTS rr_failed_jobs_count_insert;
CREATE TRIGGER rr_failed_jobs_count_insert AFTER INSERT ON rr_failed_jobs FOR EACH ROW
    INSERT INTO rr_counts (queue, bucket, stripe, failed) VALUES (NEW.queue, 0, CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE failed = failed + 1;

DROP TRIGGER IF EXISTS rr_failed_jobs_count_delete;
CREATE TRIGGER rr_failed_jobs_count_delete AFTER DELETE ON rr_failed_jobs FOR EACH ROW
    INSERT INTO rr_counts (queue, bucket, stripe, failed) VALUES (OLD.queue, 0, CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE failed = failed - 1;

-- The jobs already queued, counted after the triggers exist.
DELETE FROM rr_counts;
INSERT INTO rr_counts (queue, bucket, stripe, queued)
SELECT queue, IF(available_at <= COALESCE(queued_at, created_at), 0, (available_at + 999) DIV 1000), 0, COUNT(*)
FROM rr_jobs GROUP BY 1, 2;
INSERT INTO rr_counts (queue, bucket, stripe, failed)
SELECT queue, 0, 0, COUNT(*) FROM rr_failed_jobs GROUP BY queue
ON DUPLICATE KEY UPDATE failed = rr_counts.failed + VALUES(failed);
DROP TABLE IF EXISTS rr_job_counts;
