-- The first attempt of a keyed request refreshes `alive_at` while it runs, so a retry can
-- tell a live attempt (409, retry shortly) from one whose process died (take the key over
-- at once instead of after a fixed 60 s). Taking over is safe at any time: the attempt's
-- effect and its stored answer commit in one transaction fenced by `created_at`.
ALTER TABLE http_idempotency_keys ADD COLUMN alive_at timestamptz NOT NULL DEFAULT now();
