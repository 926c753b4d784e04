DROP INDEX ai_requests_session;
ALTER TABLE ai_requests DROP COLUMN session_id;
ALTER TABLE ai_requests DROP COLUMN reasoning_tokens;
ALTER TABLE ai_requests DROP COLUMN cache_write_tokens;
ALTER TABLE ai_requests DROP COLUMN cached_tokens;
