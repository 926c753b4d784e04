DROP TABLE ai_requests;
