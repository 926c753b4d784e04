DROP TABLE node_jobs;
DROP TABLE nodes;
