-- What operators did through the ops console (sign-ins, retries, discards, pauses):
-- platform-wide actions, which belong to no organization's audit trail.
CREATE TABLE ops_audit (
    id         uuid PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    -- The console session that acted (its public id) and where it came from.
    session_id text NOT NULL,
    ip         text,
    action     text NOT NULL,
    -- What it acted on: a job id, a job kind, a filter.
    target     text,
    detail     jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX ops_audit_at ON ops_audit (at DESC, id DESC);
