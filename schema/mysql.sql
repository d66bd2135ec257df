-- Generated from store/migrations/mysql by store/internal/schemagen: do not edit.
-- Regenerate with `go generate ./store` (or `make schema`) after adding a migration.
-- Apply to an empty database: mysql DATABASE < schema/mysql.sql

-- The sql jobs driver's schema for mysql: migrations 0001 to 0014, each followed by the row that
-- records it in rr_schema_migrations, as the driver applies them with `migrate: true`.

CREATE TABLE IF NOT EXISTS rr_schema_migrations (
	version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL);

-- 0001_init.sql
-- MySQL 8.0.1+ / MariaDB 10.6+. No partial indexes here: the claim index starts with
-- (queue, reserved_by) and `reserved_by IS NULL` is an equality lookup, so the rest of the index
-- serves the ORDER BY without a filesort (a filesort would lock every scanned row).
CREATE TABLE IF NOT EXISTS rr_jobs (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    queue        VARCHAR(255) NOT NULL,
    job_id       VARCHAR(255) NOT NULL,
    name         VARCHAR(1024) NOT NULL,
    payload      LONGBLOB     NOT NULL,
    headers      LONGTEXT     NOT NULL,
    priority     BIGINT       NOT NULL,
    available_at BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    attempts     INT          NOT NULL DEFAULT 0,
    last_error   TEXT         NULL,
    auto_ack     BOOLEAN      NOT NULL DEFAULT FALSE,
    reserved_by  VARCHAR(64)  NULL,
    claim_token  BIGINT       NULL,
    reserved_at  BIGINT       NULL,
    lease_until  BIGINT       NULL,
    PRIMARY KEY (id),
    KEY rr_jobs_claim (queue, reserved_by, priority, available_at, id),
    KEY rr_jobs_reserved (reserved_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_failed_jobs (
    id        BIGINT       NOT NULL AUTO_INCREMENT,
    queue     VARCHAR(255) NOT NULL,
    job_id    VARCHAR(255) NOT NULL,
    name      VARCHAR(1024) NOT NULL,
    payload   LONGBLOB     NOT NULL,
    headers   LONGTEXT     NOT NULL,
    priority  BIGINT       NOT NULL,
    attempts  INT          NOT NULL,
    error     TEXT         NOT NULL,
    failed_at BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY rr_failed_jobs_queue (queue, id),
    KEY rr_failed_jobs_failed_at (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_nodes (
    id           VARCHAR(64)  NOT NULL,
    host         VARCHAR(255) NOT NULL,
    pid          INT          NOT NULL,
    started_at   BIGINT       NOT NULL,
    heartbeat_at BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_pipelines (
    name       VARCHAR(255) NOT NULL,
    options    LONGTEXT     NOT NULL,
    consuming  BOOLEAN      NOT NULL DEFAULT FALSE,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (1, '0001_init.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0003_delivery_counts.sql
-- A delivery is counted when the job reaches a worker, not when it is claimed, and a requeue the
-- worker asks for is not a failure. `attempts` counts deliveries; `failures` counts those that
-- ended without an answer (what max_attempts caps); `delivered_at` marks a claim that reached a
-- worker, so that the claim of a node that dies counts as a delivery without an answer.
ALTER TABLE rr_jobs ADD COLUMN failures INT NOT NULL DEFAULT 0, ADD COLUMN delivered_at BIGINT NULL;
-- Until now every claim counted against max_attempts: keep those counts.
UPDATE rr_jobs SET failures = attempts;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (3, '0003_delivery_counts.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0004_groups.sql
-- Fair scheduling across the groups of a queue (pipeline option group_by). `grp` is the job's
-- group (the first value of the group_by header, '' without it); NULL for pipelines without
-- group_by. The group claim walks rr_jobs_group: the next group after a cursor with a waiting job
-- (one probe per group), then a group's head jobs in (priority, available_at, id) order.
ALTER TABLE rr_jobs ADD COLUMN grp VARCHAR(255) NULL, ADD KEY rr_jobs_group (queue, reserved_by, grp, priority, available_at, id);
-- One row per queue with group_by: locked by every group claim (claims of a queue take turns, so
-- group_concurrency holds across nodes), it keeps the round-robin cursor and the overflow check's lease.
CREATE TABLE IF NOT EXISTS rr_queues (
    queue       VARCHAR(255) NOT NULL,
    cursor_grp  VARCHAR(255) NULL,
    overflow_at BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- Groups routed to an overflow pipeline: their waiting jobs were moved to target_queue, and their
-- new pushes go there while they have jobs waiting there.
CREATE TABLE IF NOT EXISTS rr_overflow (
    queue        VARCHAR(255) NOT NULL,
    grp          VARCHAR(255) NOT NULL,
    target_queue VARCHAR(255) NOT NULL,
    since        BIGINT       NOT NULL,
    moved        BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, grp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (4, '0004_groups.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0005_group_index_off_the_claim.sql
-- rr_jobs_group without reserved_by: MySQL has no partial index, so every row is in it, those of
-- pipelines without group_by too; with reserved_by in the key, every claim and release of any
-- pipeline moved its entry (the plain MariaDB drain lost 4-14 %). Now a claim leaves it alone,
-- and the group claim skips a group's reserved head rows (the jobs in flight) by primary key.
ALTER TABLE rr_jobs DROP KEY rr_jobs_group, ADD KEY rr_jobs_group (queue, grp, priority, available_at, id);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (5, '0005_group_index_off_the_claim.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0006_counts.sql
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
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (6, '0006_counts.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0007_claims_off_the_counts.sql
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
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (7, '0007_claims_off_the_counts.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0008_count_moves_without_a_temporary_table.sql
-- The move trigger of 0007 fires on every UPDATE of rr_jobs (MySQL has no UPDATE OF columns), and
-- its INSERT ... SELECT ... UNION ALL built a temporary table for each updated row, even when
-- nothing moved: a claim, a delivery mark, a lease extension. An IF around one two-row INSERT runs
-- nothing for them (a probe on MariaDB 10.11: 23-29 µs per updated row with the old trigger,
-- 12-15 with this one, 11-12 with none). The body holds a semicolon: schema/mysql.sql wraps the
-- statement in DELIMITER for the mysql client. As with 0007, a requeue or move committed between
-- the DROP and the CREATE would go uncounted: stop pushing while it runs.
DROP TRIGGER IF EXISTS rr_jobs_count_move;
DELIMITER //
CREATE TRIGGER rr_jobs_count_move AFTER UPDATE ON rr_jobs FOR EACH ROW
IF NEW.queue <> OLD.queue OR NEW.available_at <> OLD.available_at
        OR COALESCE(NEW.queued_at, NEW.created_at) <> COALESCE(OLD.queued_at, OLD.created_at) THEN
    INSERT INTO rr_counts (queue, bucket, stripe, queued) VALUES
        (OLD.queue, IF(OLD.available_at <= COALESCE(OLD.queued_at, OLD.created_at), 0, (OLD.available_at + 999) DIV 1000), CONNECTION_ID() % 8, -1),
        (NEW.queue, IF(NEW.available_at <= COALESCE(NEW.queued_at, NEW.created_at), 0, (NEW.available_at + 999) DIV 1000), CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE queued = queued + VALUES(queued); END IF //
DELIMITER ;

-- A claim reads back what it reserved by node and claim token. By node alone the read went through
-- the node's whole range, the entries of its jobs acked but not yet purged included: MariaDB's slow
-- log showed 7,700 rows examined per read in a 10-minute churn where the node held at most 1,000.
ALTER TABLE rr_jobs DROP KEY rr_jobs_reserved, ADD KEY rr_jobs_reserved (reserved_by, claim_token);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (8, '0008_count_moves_without_a_temporary_table.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0009_unique_keys.sql
-- Unique jobs: a job pushed with the header x-sql-unique-key is not created while a job of the same
-- queue holds that key. unique_key is the header's first value, NULL for jobs without it: MySQL has
-- no partial index, but NULLs never collide in a UNIQUE index. The insert is
-- `ON DUPLICATE KEY UPDATE id = id` (not INSERT IGNORE, which turns other errors into warnings); the
-- count triggers see no change of queue or due time in such an update and write nothing. The key is
-- given up when the job reaches a worker (unique_while: waiting) or when its row is deleted
-- (unique_while: active). (queue, unique_key) in utf8mb4 is 2 × 255 × 4 = 2,040 bytes, under
-- InnoDB's 3,072-byte index key limit: keys longer than 255 characters are refused at push.
ALTER TABLE rr_jobs ADD COLUMN unique_key VARCHAR(255) NULL, ADD UNIQUE KEY rr_jobs_unique (queue, unique_key);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (9, '0009_unique_keys.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0010_job_id_index.sql
-- sql.Find and sql.Cancel look jobs up by the pusher's id within a queue, waiting, reserved and
-- failed alike: one index on each table. InnoDB adds a secondary index in place, without
-- blocking pushes and claims.
ALTER TABLE rr_jobs ADD KEY rr_jobs_job_id (queue, job_id);
ALTER TABLE rr_failed_jobs ADD KEY rr_failed_jobs_job_id (queue, job_id);
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (10, '0010_job_id_index.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0011_schedules.sql
-- Durable cron (sql.schedules): one row per schedule with the last tick pushed (unix
-- milliseconds of the tick's time, not of the push). A node pushes a tick's job only in the
-- transaction that moves last_tick forward to that tick, so however many nodes run the schedule,
-- the database lets one of them push each tick. Re-runnable (each DDL statement commits alone).
CREATE TABLE IF NOT EXISTS rr_schedules (
    name       VARCHAR(191) NOT NULL,
    last_tick  BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (11, '0011_schedules.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

-- 0014_history.sql
-- The dashboard's history: per pipeline, per minute (unix milliseconds of its start) and per node,
-- the jobs pushed, processed (acknowledged) and failed there, and the queue's depth when the node
-- wrote the minute. Each node adds its own row once a minute; readers sum the nodes.
CREATE TABLE IF NOT EXISTS rr_history (
    pipeline  VARCHAR(255) NOT NULL,
    minute    BIGINT       NOT NULL,
    node      VARCHAR(64)  NOT NULL,
    pushed    BIGINT       NOT NULL DEFAULT 0,
    processed BIGINT       NOT NULL DEFAULT 0,
    failed    BIGINT       NOT NULL DEFAULT 0,
    depth     BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (pipeline, minute, node),
    -- The retention's purge deletes by minute, whatever the pipeline (one destroyed long ago too).
    KEY rr_history_minute (minute)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (14, '0014_history.sql', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED));

