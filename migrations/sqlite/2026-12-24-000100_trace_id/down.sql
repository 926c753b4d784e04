ALTER TABLE ai_requests DROP COLUMN trace_id;
