-- The W3C trace id of each request (its server span's, or the client's traceparent's with traces
-- off), so a history row leads to its trace.
ALTER TABLE ai_requests ADD COLUMN trace_id TEXT;
