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
