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
