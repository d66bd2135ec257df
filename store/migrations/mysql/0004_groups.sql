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
