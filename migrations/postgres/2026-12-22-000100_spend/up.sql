-- What each request cost (NULL when its model has no price), whether that cost was estimated
-- from relayed text, and who spent it: the key's team, the user, and the client's tags
-- (comma-separated, as sent in x-ai-gateway-tags).
ALTER TABLE ai_requests ADD COLUMN cost_usd DOUBLE PRECISION;
ALTER TABLE ai_requests ADD COLUMN cost_estimated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE ai_requests ADD COLUMN team TEXT;
ALTER TABLE ai_requests ADD COLUMN user_name TEXT;
ALTER TABLE ai_requests ADD COLUMN tags TEXT;
CREATE INDEX ai_requests_team ON ai_requests (team, created_at);

-- A virtual key's team, its own priority and the user it spends as (NULL: its name).
ALTER TABLE api_keys ADD COLUMN team TEXT;
ALTER TABLE api_keys ADD COLUMN priority TEXT;
ALTER TABLE api_keys ADD COLUMN user_name TEXT;

-- The spend ledger: what each budget's subject spent per period, written with the history rows;
-- Redis counters are rebuilt from it when Redis is empty.
CREATE TABLE spend_ledger (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    amount_usd DOUBLE PRECISION NOT NULL,
    requests BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, name, period, period_start)
);
