DROP TABLE exports_requests;
DROP TABLE exports;
