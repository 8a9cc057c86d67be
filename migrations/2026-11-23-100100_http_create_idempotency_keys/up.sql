-- Idempotency keys of POST requests (keel-http `idempotency` middleware). One row per
-- caller scope and key: claimed while the first request runs (status NULL), then holding
-- its stored answer for 24 hours so a retry replays it instead of running again.
CREATE TABLE http_idempotency_keys (
    -- SHA-256 of the caller's Authorization header (or "anonymous"), method and route template.
    scope        text        NOT NULL,
    -- The client's Idempotency-Key: 1-255 printable ASCII characters.
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request (path and query, content type, body): a retry must match it.
    request_hash bytea       NOT NULL,
    -- NULL while the first request is still running.
    status       smallint    CHECK (status BETWEEN 100 AND 599),
    -- Replayed response headers, as [[name, value], ...].
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (scope, key)
);

-- The purge of rows past their 24 hours.
CREATE INDEX http_idempotency_keys_created_at ON http_idempotency_keys (created_at);
