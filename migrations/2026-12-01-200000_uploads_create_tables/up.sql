-- Uploads: what each stored file is and where it stands. The bytes live in object
-- storage under {org_id}/uploads/{id}/..., never here. Organization and user ids are not
-- foreign keys into accounts' tables (the domains share a database, not a schema).

CREATE TABLE uploads (
    -- uuid v7: time-ordered, so it is also the keyset of "newest first".
    id               uuid PRIMARY KEY,
    org_id           uuid        NOT NULL,
    -- Who uploaded it: a person (session) or an API key.
    uploaded_by_user uuid,
    uploaded_by_key  uuid,
    method           text        NOT NULL CHECK (method IN ('streamed', 'resumable', 'direct')),
    state            text        NOT NULL CHECK (state IN ('receiving', 'processing', 'ready', 'rejected', 'failed')),
    -- The client's name for the file, cleaned: shown and offered as the download name,
    -- never used as a storage key or a path.
    file_name        text        NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    -- What the client said it is, and what the bytes turned out to be.
    declared_type    text        NOT NULL,
    detected_type    text,
    -- The file's size: known at creation for resumable and direct uploads, at the end
    -- for streamed ones. received_bytes is how much has arrived (the tus offset).
    size_bytes       bigint      NOT NULL CHECK (size_bytes >= 0),
    received_bytes   bigint      NOT NULL DEFAULT 0 CHECK (received_bytes >= 0 AND received_bytes <= size_bytes),
    -- Hex SHA-256 of the bytes: the ETag of downloads.
    sha256           text,
    object_key       text        NOT NULL,
    -- Why it was rejected or failed; shown to the uploader.
    reason           text,
    -- What processing found (image size, thumbnail, table shape, AI results).
    results          jsonb       NOT NULL DEFAULT '{}',
    -- An upload still receiving after this is removed by the sweeper.
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    CHECK (num_nonnulls(uploaded_by_user, uploaded_by_key) = 1)
);
-- The list and its two filters, newest first.
CREATE INDEX uploads_list ON uploads (org_id, id DESC);
CREATE INDEX uploads_list_by_state ON uploads (org_id, state, id DESC);
CREATE INDEX uploads_list_by_type ON uploads (org_id, detected_type, id DESC);
-- The sweeper's expired unfinished uploads.
CREATE INDEX uploads_unfinished ON uploads (expires_at) WHERE state = 'receiving';

-- Bytes each organization holds, kept in step with its uploads in the same transactions
-- so the quota check is one row, not a sum over every upload.
CREATE TABLE uploads_usage (
    org_id     uuid PRIMARY KEY,
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0)
);
