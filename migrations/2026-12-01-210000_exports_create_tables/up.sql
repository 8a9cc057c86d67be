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
    object_key        text        NOT NULL,
    file_name         text        NOT NULL,
    error             text,
    -- Job runs that started on it (a retry after a crash starts the file again).
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
-- The per-organization limits: exports still to be produced, and those of the last day.
CREATE INDEX exports_active ON exports (org_id) WHERE state IN ('queued', 'running');
CREATE INDEX exports_recent ON exports (org_id, created_at);
-- The retention job's finished exports past their expiry.
CREATE INDEX exports_expiry ON exports (expires_at) WHERE expires_at IS NOT NULL;
