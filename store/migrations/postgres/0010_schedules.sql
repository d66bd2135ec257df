-- Durable cron (sql.schedules): one row per schedule with the last tick pushed (unix
-- milliseconds of the tick's time, not of the push). A node pushes a tick's job only in the
-- transaction that moves last_tick forward to that tick, so however many nodes run the schedule,
-- the database lets one of them push each tick.
CREATE TABLE rr_schedules (
    name       TEXT   NOT NULL PRIMARY KEY,
    last_tick  BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
