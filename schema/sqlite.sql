-- Generated from store/migrations/sqlite by store/internal/schemagen: do not edit.
-- Regenerate with `go generate ./store` (or `make schema`) after adding a migration.
-- Apply to an empty database: sqlite3 -bail jobs.db < schema/sqlite.sql

-- The sql jobs driver's schema for sqlite: migrations 0001 to 0017, each followed by the row that
-- records it in rr_schema_migrations, as the driver applies them with `migrate: true`.

CREATE TABLE IF NOT EXISTS rr_schema_migrations (
	version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL);

-- 0001_init.sql
-- Jobs waiting, delayed or reserved. A row is deleted when its job is acknowledged.
CREATE TABLE rr_jobs (
    id           INTEGER PRIMARY KEY,            -- insertion order: FIFO within a priority
    queue        TEXT    NOT NULL,
    job_id       TEXT    NOT NULL,               -- the id given by the pusher
    name         TEXT    NOT NULL,               -- the job name (usually a PHP class)
    payload      BLOB    NOT NULL,
    headers      TEXT    NOT NULL DEFAULT '{}',  -- JSON object of string -> array of strings
    priority     INTEGER NOT NULL,
    available_at INTEGER NOT NULL,               -- unix milliseconds; in the future = delayed
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,     -- deliveries so far
    last_error   TEXT,                           -- why the previous delivery failed
    auto_ack     INTEGER NOT NULL DEFAULT 0,
    reserved_by  TEXT,                           -- node id holding the job; NULL = ready or delayed
    claim_token  INTEGER,                        -- fences ack/nack/requeue to the claim that holds the job
    reserved_at  INTEGER,
    lease_until  INTEGER                           -- hard deadline of the claim, extended while the job runs
);

-- The claim reads this index as one range in (priority, available_at, id) order.
CREATE INDEX rr_jobs_claim ON rr_jobs (queue, priority, available_at, id) WHERE reserved_by IS NULL;
-- Counting and recovering reserved jobs.
CREATE INDEX rr_jobs_reserved ON rr_jobs (queue, reserved_by) WHERE reserved_by IS NOT NULL;

-- Jobs that were rejected or failed: kept until retried or deleted.
CREATE TABLE rr_failed_jobs (
    id        INTEGER PRIMARY KEY,
    queue     TEXT    NOT NULL,
    job_id    TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    headers   TEXT    NOT NULL DEFAULT '{}',
    priority  INTEGER NOT NULL,
    attempts  INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX rr_failed_jobs_queue ON rr_failed_jobs (queue, id);
CREATE INDEX rr_failed_jobs_failed_at ON rr_failed_jobs (failed_at);

-- One row per running RoadRunner process (fresh id per start); a stale heartbeat means dead.
CREATE TABLE rr_nodes (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- Pipelines created at runtime with jobs.Declare, re-created when rr starts again.
CREATE TABLE rr_pipelines (
    name       TEXT    PRIMARY KEY,
    options    TEXT    NOT NULL,              -- JSON object: the declared options (strings)
    consuming  INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT  NOT NULL
);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (1, '0001_init.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0003_delivery_counts.sql
-- A delivery is counted when the job reaches a worker, not when it is claimed, and a requeue the
-- worker asks for is not a failure. `attempts` counts deliveries; `failures` counts those that
-- ended without an answer (what max_attempts caps); `delivered_at` marks a claim that reached a
-- worker, so that the claim of a node that dies counts as a delivery without an answer.
ALTER TABLE rr_jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rr_jobs ADD COLUMN delivered_at INTEGER;
-- Until now every claim counted against max_attempts: keep those counts.
UPDATE rr_jobs SET failures = attempts;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (3, '0003_delivery_counts.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0004_groups.sql
-- Fair scheduling across the groups of a queue (pipeline option group_by). `grp` is the job's
-- group (the first value of the group_by header, '' without it); NULL for pipelines without
-- group_by, so their rows stay out of the group index and their pushes pay nothing for it.
ALTER TABLE rr_jobs ADD COLUMN grp TEXT;
-- The group claim walks this index: the next group after a cursor with a waiting job (one probe
-- per group), then a group's head jobs in (priority, available_at, id) order.
CREATE INDEX rr_jobs_group ON rr_jobs (queue, grp, priority, available_at, id) WHERE reserved_by IS NULL AND grp IS NOT NULL;
-- One row per queue with group_by: it keeps the round-robin cursor and the overflow check's lease.
CREATE TABLE rr_queues (
    queue       TEXT    PRIMARY KEY,
    cursor_grp  TEXT,
    overflow_at INTEGER NOT NULL DEFAULT 0
);
-- Groups routed to an overflow pipeline: their waiting jobs were moved to target_queue, and their
-- new pushes go there while they have jobs waiting there.
CREATE TABLE rr_overflow (
    queue        TEXT    NOT NULL,
    grp          TEXT    NOT NULL,
    target_queue TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    moved        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, grp)
);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (4, '0004_groups.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0006_counts.sql
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
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (6, '0006_counts.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0007_claims_off_the_counts.sql
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
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (7, '0007_claims_off_the_counts.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0008_unique_keys.sql
-- Unique jobs: a job pushed with the header x-sql-unique-key is not created while a job of the same
-- queue holds that key. unique_key is the header's first value, NULL for jobs without it (so they
-- stay out of the index and their pushes pay nothing for it). The insert is
-- `ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING`. The key is given up
-- when the job reaches a worker (unique_while: waiting) or when its row is deleted (unique_while: active).
ALTER TABLE rr_jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX rr_jobs_unique ON rr_jobs (queue, unique_key) WHERE unique_key IS NOT NULL;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (8, '0008_unique_keys.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0009_job_id_index.sql
-- sql.Find and sql.Cancel look jobs up by the pusher's id within a queue, waiting, reserved and
-- failed alike: one index on each table. (Not partial: a job at a worker is found too.)
CREATE INDEX rr_jobs_job_id ON rr_jobs (queue, job_id);
CREATE INDEX rr_failed_jobs_job_id ON rr_failed_jobs (queue, job_id);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (9, '0009_job_id_index.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0010_schedules.sql
-- Durable cron (sql.schedules): one row per schedule with the last tick pushed (unix
-- milliseconds of the tick's time, not of the push). A node pushes a tick's job only in the
-- transaction that moves last_tick forward to that tick, so however many nodes run the schedule,
-- the database lets one of them push each tick.
CREATE TABLE rr_schedules (
    name       TEXT    NOT NULL PRIMARY KEY,
    last_tick  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (10, '0010_schedules.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0013_history.sql
-- The dashboard's history: per pipeline, per minute (unix milliseconds of its start) and per node,
-- the jobs pushed, processed (acknowledged) and failed there, and the queue's depth when the node
-- wrote the minute. Each node adds its own row once a minute; readers sum the nodes.
CREATE TABLE rr_history (
    pipeline  TEXT    NOT NULL,
    minute    INTEGER NOT NULL,
    node      TEXT    NOT NULL,
    pushed    INTEGER NOT NULL DEFAULT 0,
    processed INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    depth     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pipeline, minute, node)
);
-- The retention's purge deletes by minute, whatever the pipeline (one destroyed long ago too).
CREATE INDEX rr_history_minute ON rr_history (minute);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (13, '0013_history.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0015_ack_marks.sql
-- An ack marks its job's row instead of deleting it; a sweep deletes the marked rows a few thousand
-- at a time. The pusher's job ids are random (the PHP client's are UUID v4), so deleting a row
-- takes its entry from a random page of rr_jobs_job_id, and SQLite's WAL writes every page a
-- commit touches whole: an ack batch of 50 jobs wrote about 50 pages of that index. The mark
-- writes the row and its reserved-index entry, both in claim order, and the sweep pays for each
-- index page once per several thousand rows.
--
-- A marked row has reserved_by = '' (no node has that id) and no claim token, lease or unique key:
-- it is neither waiting (reserved_by IS NULL) nor held (reserved_by > ''), no fence matches it, and
-- its count is taken off when it is marked, not again when it is swept.
CREATE INDEX rr_jobs_acked ON rr_jobs (id) WHERE reserved_by = '';

DROP TRIGGER rr_jobs_count_delete;
CREATE TRIGGER rr_jobs_count_delete AFTER DELETE ON rr_jobs WHEN OLD.reserved_by IS NOT '' BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued - 1;
END;

CREATE TRIGGER rr_jobs_count_ack AFTER UPDATE OF reserved_by ON rr_jobs WHEN NEW.reserved_by = '' AND OLD.reserved_by IS NOT '' BEGIN
    INSERT INTO rr_counts (queue, bucket, stripe, queued)
    VALUES (OLD.queue, CASE WHEN OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at) THEN 0 ELSE (OLD.available_at + 999) / 1000 END, 0, -1)
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = queued - 1;
END;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (15, '0015_ack_marks.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0016_reserved_index_without_marks.sql
-- rr_jobs_reserved holds the jobs held by a node, not the rows acks marked (reserved_by = ''):
-- a mark then takes the row's entry out of this index instead of moving it to a key of its own,
-- and the sweep has one index entry fewer to delete per row. Every statement that reads held
-- rows says `reserved_by > ''` on SQLite, which is this index's condition.
DROP INDEX rr_jobs_reserved;
CREATE INDEX rr_jobs_reserved ON rr_jobs (queue, reserved_by) WHERE reserved_by > '';
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (16, '0016_reserved_index_without_marks.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- 0017_job_id_index_by_its_end.sql
-- rr_jobs' job id index holds the ids' last 12 characters instead of (queue, job_id). The PHP
-- client's ids are random UUIDs, so every push and every sweep wrote a random page of this index;
-- entries of a 36-character id and its queue filled 2.5 times the pages these do, and beside
-- 1M jobs they no longer fit the writer's page cache. The last characters of a UUID are random
-- (those of an id that counts up differ too), so ids seldom share a key; Find and Cancel match
-- the key for the index, then the queue and the whole id (see dialect.jobKey). rr_failed_jobs
-- keeps (queue, job_id): its rows are not written per job.
DROP INDEX IF EXISTS rr_jobs_job_id;
CREATE INDEX rr_jobs_job_id ON rr_jobs (substr(job_id, -12));
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (17, '0017_job_id_index_by_its_end.sql', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

