-- Exports: one row per requested export, whatever its state. The file lives in object
-- storage under {org_id}/exports/{id}/, never here. Organization, user and key ids are
-- not foreign keys into accounts' tables (the domains share a database, not a schema).

CREATE TABLE exports (
    -- uuid v7: time-ordered, so it is also the keyset of "newest first".
    id                uuid PRIMARY KEY,
    org_id            uuid        NOT NULL,
    -- Who requested it: a person (session) or an API key.
    requested_by_user uuid,
    requested_by_key  uuid,
    -- The data source's name, as registered by the binary.
    source            text        NOT NULL,
    format            text        NOT NULL CHECK (format IN ('csv', 'ndjson')),
    compress          boolean     NOT NULL,
    -- The validated filters: created_after / created_before and the source's own.
    filters           jsonb       NOT NULL DEFAULT '{}',
    state             text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'expired')),
    -- Progress, written every few thousand rows by the job.
    rows_written      bigint      NOT NULL DEFAULT 0,
    estimated_rows    bigint,
    -- The finished file.
    row_count         bigint,
    size_bytes        bigint,
    sha256            text,
    -- The finished file's key ({org_id}/exports/{id}/{attempt}/{file_name}): each run
    -- writes under its own attempt, so a stale run can never touch the file another
    -- run recorded.
    object_key        text,
    file_name         text        NOT NULL,
    -- With a read replica: the primary's WAL position when the export was requested.
    -- The job waits until the replica has replayed it, so the replica holds every row
    -- the export must contain.
    replica_lsn       pg_lsn,
    error             text,
    -- Job runs that started on it (a retry after a crash starts the file again); also
    -- the fence a run's writes are conditioned on.
    attempts          integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    -- The file and the row are deleted after this (set when it finishes).
    expires_at        timestamptz,
    CHECK (num_nonnulls(requested_by_user, requested_by_key) = 1)
);
-- The list, newest first.
CREATE INDEX exports_list ON exports (org_id, id DESC);
-- The per-organization limit of exports still to be produced.
CREATE INDEX exports_active ON exports (org_id) WHERE state IN ('queued', 'running');
-- The retention job's finished exports past their expiry.
CREATE INDEX exports_expiry ON exports (expires_at) WHERE expires_at IS NOT NULL;

-- Every export requested, for the daily limit: kept when the export itself is deleted (so
-- deleting exports does not give the day's allowance back), purged after two days.
CREATE TABLE exports_requests (
    export_id  uuid PRIMARY KEY,
    org_id     uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exports_requests_recent ON exports_requests (org_id, created_at);
