ALTER TABLE http_idempotency_keys DROP COLUMN alive_at;
