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
