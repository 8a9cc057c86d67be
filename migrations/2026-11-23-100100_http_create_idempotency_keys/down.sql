DROP TABLE http_idempotency_keys;
