DROP TABLE uploads_usage;
DROP TABLE uploads;
