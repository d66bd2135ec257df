-- Claims no longer write the counts. rr_counts replaces rr_job_counts: a job is counted in its
-- bucket from its insert to its delete, reserved or not (queued), so that a claim, a release, a
-- lease extension or a delivery mark nets to nothing and writes no count row (no row lock shared
-- between claiming sessions). The reserved jobs are counted when the counts are read, from
-- rr_jobs_reserved: as many as are in flight, whatever the backlog.
-- bucket and stripe as in 0006.
-- Writes to the jobs wait from here until the migration commits: the count at the end and the
-- triggers see the same rows.
LOCK TABLE rr_jobs, rr_failed_jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE rr_counts (
    queue  TEXT    NOT NULL,
    bucket BIGINT  NOT NULL,
    stripe INTEGER NOT NULL,
    queued BIGINT  NOT NULL DEFAULT 0, -- rows of rr_jobs, waiting or reserved
    failed BIGINT  NOT NULL DEFAULT 0, -- rows of rr_failed_jobs (bucket 0)
    PRIMARY KEY (queue, bucket, stripe)
);
ALTER TABLE rr_counts SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- The triggers stay; their functions now write rr_counts. Each applies the net change of one
-- statement: zero sums skipped, keys in order (two sessions sharing a stripe lock its rows in the
-- same order: no deadlock between them).
CREATE OR REPLACE FUNCTION rr_jobs_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_counts AS c (queue, bucket, stripe, queued)
    SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, pg_backend_pid() % 8, count(*)
    FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = c.queued + excluded.queued;
    -- Wake consumers on every node: one notification per statement and queue with a job due (within
    -- the second), delivered at commit; identical ones of a transaction are merged.
    PERFORM pg_notify('rr_jobs', queue) FROM (SELECT DISTINCT queue FROM new_rows
        WHERE available_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000) due;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rr_jobs_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_counts AS c (queue, bucket, stripe, queued)
    SELECT queue, bucket, pg_backend_pid() % 8, sum(n)
    FROM (SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END AS bucket, 1 AS n
          FROM new_rows
          UNION ALL
          SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, -1
          FROM old_rows) d
    GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = c.queued + excluded.queued;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rr_jobs_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rr_counts AS c (queue, bucket, stripe, queued)
    SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, pg_backend_pid() % 8, -count(*)
    FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (queue, bucket, stripe) DO UPDATE SET queued = c.queued + excluded.queued;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rr_failed_jobs_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rr_counts AS c (queue, bucket, stripe, failed)
        SELECT queue, 0, pg_backend_pid() % 8, count(*) FROM new_rows GROUP BY 1 ORDER BY 1
        ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
    ELSE
        INSERT INTO rr_counts AS c (queue, bucket, stripe, failed)
        SELECT queue, 0, pg_backend_pid() % 8, -count(*) FROM old_rows GROUP BY 1 ORDER BY 1
        ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
    END IF;
    RETURN NULL;
END
$$;

DROP TABLE rr_job_counts;

-- The jobs already queued.
INSERT INTO rr_counts (queue, bucket, stripe, queued)
SELECT queue, CASE WHEN available_at <= COALESCE(queued_at, created_at) THEN 0 ELSE (available_at + 999) / 1000 END, 0, count(*)
FROM rr_jobs GROUP BY 1, 2;
INSERT INTO rr_counts AS c (queue, bucket, stripe, failed)
SELECT queue, 0, 0, count(*) FROM rr_failed_jobs GROUP BY 1
ON CONFLICT (queue, bucket, stripe) DO UPDATE SET failed = c.failed + excluded.failed;
