-- Jobs get gateway-issued ids: `job_id` is now the gateway's (random, unguessable) id, and the
-- node's own id and the caller that created the job are kept beside it, so /status and /download
-- reach the right job on the right node for its owner only. Older rows keep their id as the
-- node's and have no known caller (only the admin token may read them).
ALTER TABLE node_jobs ADD COLUMN node_job_id TEXT NOT NULL DEFAULT '';
UPDATE node_jobs SET node_job_id = job_id;
ALTER TABLE node_jobs ADD COLUMN caller TEXT;
