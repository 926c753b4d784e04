ALTER TABLE node_jobs DROP COLUMN caller;
ALTER TABLE node_jobs DROP COLUMN node_job_id;
