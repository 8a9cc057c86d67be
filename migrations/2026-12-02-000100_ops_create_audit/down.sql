DROP TABLE ops_audit;
