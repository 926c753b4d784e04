-- Whether the response cache applied: hit, miss, or NULL (it did not apply).
ALTER TABLE ai_requests ADD COLUMN cache TEXT;
