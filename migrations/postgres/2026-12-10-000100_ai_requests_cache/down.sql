ALTER TABLE ai_requests DROP COLUMN cache;
