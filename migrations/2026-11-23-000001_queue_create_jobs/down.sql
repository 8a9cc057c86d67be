DROP TABLE queue_jobs;
