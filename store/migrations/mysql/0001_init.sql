-- MySQL 8.0.1+ / MariaDB 10.6+. No partial indexes here: the claim index starts with
-- (queue, reserved_by) and `reserved_by IS NULL` is an equality lookup, so the rest of the index
-- serves the ORDER BY without a filesort (a filesort would lock every scanned row).
CREATE TABLE IF NOT EXISTS rr_jobs (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    queue        VARCHAR(255) NOT NULL,
    job_id       VARCHAR(255) NOT NULL,
    name         VARCHAR(1024) NOT NULL,
    payload      LONGBLOB     NOT NULL,
    headers      LONGTEXT     NOT NULL,
    priority     BIGINT       NOT NULL,
    available_at BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    attempts     INT          NOT NULL DEFAULT 0,
    last_error   TEXT         NULL,
    auto_ack     BOOLEAN      NOT NULL DEFAULT FALSE,
    reserved_by  VARCHAR(64)  NULL,
    claim_token  BIGINT       NULL,
    reserved_at  BIGINT       NULL,
    lease_until  BIGINT       NULL,
    PRIMARY KEY (id),
    KEY rr_jobs_claim (queue, reserved_by, priority, available_at, id),
    KEY rr_jobs_reserved (reserved_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_failed_jobs (
    id        BIGINT       NOT NULL AUTO_INCREMENT,
    queue     VARCHAR(255) NOT NULL,
    job_id    VARCHAR(255) NOT NULL,
    name      VARCHAR(1024) NOT NULL,
    payload   LONGBLOB     NOT NULL,
    headers   LONGTEXT     NOT NULL,
    priority  BIGINT       NOT NULL,
    attempts  INT          NOT NULL,
    error     TEXT         NOT NULL,
    failed_at BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY rr_failed_jobs_queue (queue, id),
    KEY rr_failed_jobs_failed_at (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_nodes (
    id           VARCHAR(64)  NOT NULL,
    host         VARCHAR(255) NOT NULL,
    pid          INT          NOT NULL,
    started_at   BIGINT       NOT NULL,
    heartbeat_at BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rr_pipelines (
    name       VARCHAR(255) NOT NULL,
    options    LONGTEXT     NOT NULL,
    consuming  BOOLEAN      NOT NULL DEFAULT FALSE,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
