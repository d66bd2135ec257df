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
