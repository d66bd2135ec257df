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
