-- The GPU node registry every replica reads (re-read each health period), and which node owns
-- each job a worker accepted, so /status/{job_id} reaches it after a restart. Times are epoch ms.
CREATE TABLE nodes (
    url        TEXT PRIMARY KEY,
    pool       TEXT   NOT NULL,
    runtime    TEXT,
    source     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE node_jobs (
    job_id     TEXT PRIMARY KEY,
    node_url   TEXT   NOT NULL,
    pool       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX node_jobs_created_at ON node_jobs (created_at);
