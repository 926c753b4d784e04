-- One row per request to an inference endpoint. Times are epoch milliseconds and ids are UUIDv7
-- text, so the same diesel schema serves PostgreSQL and SQLite.
CREATE TABLE ai_requests (
    id                TEXT PRIMARY KEY,
    created_at        BIGINT  NOT NULL,
    request_id        TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL,
    task              TEXT,
    model             TEXT,
    provider          TEXT,
    upstream_model    TEXT,
    stream            BOOLEAN NOT NULL,
    status            TEXT    NOT NULL,
    http_status       INTEGER NOT NULL,
    latency_ms        BIGINT  NOT NULL,
    ttft_ms           BIGINT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    attempts          TEXT    NOT NULL,
    caller            TEXT,
    error_message     TEXT,
    result_summary    TEXT,
    prompt            TEXT
);
CREATE INDEX ai_requests_created_at ON ai_requests (created_at);
CREATE INDEX ai_requests_status ON ai_requests (status, created_at);
CREATE INDEX ai_requests_provider ON ai_requests (provider, created_at);
