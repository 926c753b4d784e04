-- Token details (parts of prompt_tokens and completion_tokens, NULL when no usage was reported)
-- and the coding agent's session, which /history filters on.
ALTER TABLE ai_requests ADD COLUMN cached_tokens BIGINT;
ALTER TABLE ai_requests ADD COLUMN cache_write_tokens BIGINT;
ALTER TABLE ai_requests ADD COLUMN reasoning_tokens BIGINT;
ALTER TABLE ai_requests ADD COLUMN session_id TEXT;
CREATE INDEX ai_requests_session ON ai_requests (session_id, created_at);
