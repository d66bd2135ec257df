-- Claims no longer write the counts. rr_counts replaces rr_job_counts: a job is counted in its
-- bucket from its insert to its delete, reserved or not (queued), so that a claim, a release, a
-- lease extension or a delivery mark changes no count row (no trigger fires for them: they do not
-- set the columns the move trigger watches). The reserved jobs are counted when the counts are
-- read, from rr_jobs_reserved: as many as are in flight, whatever the backlog.
-- bucket and stripe as in 0006.
CREATE TABLE rr_counts (
    queue  TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    stripe INTEGER NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0, -- rows of rr_jobs, waiting or reserved
    failed INTEGER NOT NULL DEFAULT 0, -- rows of rr_failed_jobs (bucket 0)
    PRIMARY KEY (queue, bucket, stripe)
) WITHOUT ROWID;

DROP TRIGGER rr_jobs_count_insert;
DROP TRIGGER rr_jobs_count_delete;
DROP TRIGGER rr_jobs_count_reserve;
DROP TRIGGER rr_jobs_count_move;
DROP TRIGGER rr_failed_jobs_count_insert;
DROP TRIGGER rr_failed_jobs_count_delete;
DROP TABLE rr_job_counts;

CREATE TRIGGER rr_jobs_count_insert AFTER INSERT ON rr_jobs BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (NEW.queue, CASE WHEN NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at) THEN 0 ELSE (NEW.available_at + 999) / 1000 END, 0, 1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued - 1;
END;

-- A requeue (new due time), a move to another queue: out of one bucket, into another.
CREATE TRIGGER rr_jobs_count_move AFTER UPDATE OF queue, available_at, created_at, queued_at ON rr_jobs
WHEN NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at) BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued - 1;
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (NEW.queue, CASE WHEN NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at) THEN 0 ELSE (NEW.available_at + 999) / 1000 END, 0, 1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER rr_failed_jobs_count_insert AFTER INSERT ON rr_failed_jobs BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, failed) VALUES (NEW.queue, 0, 0, 1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed + 1;
END;

CREATE TRIGGER rr_failed_jobs_count_delete AFTER DELETE ON rr_failed_jobs BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, failed) VALUES (OLD.queue, 0, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed - 1;
END;

-- The jobs already queued (the migration holds the write lock: nothing is written meanwhile).
INSERT INTO rr_counts (queue, bucket, stripe, queued)
SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, 0, COUNT(*)
FROM rr_jobs WHERE true GROUP BY 1, 2
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued + excluded.queued;
INSERT INTO rr_counts (queue, bucket, stripe, failed)
SELECT queue, 0, 0, COUNT(*) FROM rr_failed_jobs WHERE true GROUP BY 1
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = failed + excluded.failed;
