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
