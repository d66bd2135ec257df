-- Wake consumers on every node when a job becomes ready by INSERT, whoever inserts it (the
-- driver, or application code enqueueing inside its own transaction). Delivered at commit;
-- identical notifications of one transaction are merged. Polling stays the fallback.
CREATE FUNCTION rr_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rr_jobs', NEW.queue);
    RETURN NULL;
END
$$;
CREATE TRIGGER rr_jobs_notify AFTER INSERT ON rr_jobs FOR EACH ROW
    WHEN (NEW.available_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000)
    EXECUTE FUNCTION rr_jobs_notify();
