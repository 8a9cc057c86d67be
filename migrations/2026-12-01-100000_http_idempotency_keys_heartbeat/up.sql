-- The first attempt of a keyed request refreshes `alive_at` while it runs, so a retry can
-- tell a live attempt (409, retry shortly) from one whose process died (take the key over
-- at once instead of after a fixed 60 s). Taking over cannot make a change twice: a
-- handler's change and its stored answer commit in one transaction fenced by
-- `created_at` (the routes that do not record theirs make changes that repeat harmlessly).
ALTER TABLE http_idempotency_keys ADD COLUMN alive_at timestamptz NOT NULL DEFAULT now();
