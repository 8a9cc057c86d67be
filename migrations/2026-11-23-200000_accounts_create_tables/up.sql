-- Users, organizations (tenants), memberships, sessions, API keys, one-time tokens and the
-- audit trail. Secrets (session tokens, API keys, one-time tokens) are stored only as
-- SHA-256 hashes; passwords only as argon2id PHC strings.

CREATE TABLE accounts_users (
    id                uuid PRIMARY KEY,
    -- Stored lowercased and trimmed: one account per address, whatever its spelling.
    email             text        NOT NULL UNIQUE CHECK (email = lower(email)),
    name              text        NOT NULL,
    password_hash     text        NOT NULL,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts_organizations (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts_memberships (
    org_id     uuid        NOT NULL REFERENCES accounts_organizations (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
-- The caller's organizations; members of an organization in keyset order.
CREATE INDEX accounts_memberships_user ON accounts_memberships (user_id);
CREATE INDEX accounts_memberships_org_order ON accounts_memberships (org_id, created_at, user_id);

CREATE TABLE accounts_sessions (
    id              uuid PRIMARY KEY,
    token_hash      bytea       NOT NULL UNIQUE,
    user_id         uuid        NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    org_id          uuid        NOT NULL REFERENCES accounts_organizations (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX accounts_sessions_user ON accounts_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX accounts_sessions_expired ON accounts_sessions (expires_at);

CREATE TABLE accounts_api_keys (
    id           uuid PRIMARY KEY,
    org_id       uuid        NOT NULL REFERENCES accounts_organizations (id) ON DELETE CASCADE,
    created_by   uuid        REFERENCES accounts_users (id) ON DELETE SET NULL,
    name         text        NOT NULL,
    -- The first characters of the key, shown in lists so people can tell keys apart.
    prefix       text        NOT NULL,
    secret_hash  bytea       NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_api_keys_org_order ON accounts_api_keys (org_id, created_at DESC, id DESC);

-- Email verification, password reset and invitation tokens: single use, expiring.
CREATE TABLE accounts_tokens (
    id         uuid PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('verify_email', 'password_reset', 'invitation')),
    token_hash bytea       NOT NULL UNIQUE,
    user_id    uuid        REFERENCES accounts_users (id) ON DELETE CASCADE,
    org_id     uuid        REFERENCES accounts_organizations (id) ON DELETE CASCADE,
    email      text,
    role       text        CHECK (role IS NULL OR role IN ('owner', 'admin', 'member')),
    invited_by uuid        REFERENCES accounts_users (id) ON DELETE SET NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_tokens_expired ON accounts_tokens (expires_at);

CREATE TABLE accounts_audit_events (
    id               uuid PRIMARY KEY,
    org_id           uuid        REFERENCES accounts_organizations (id) ON DELETE CASCADE,
    actor_user_id    uuid,
    actor_api_key_id uuid,
    action           text        NOT NULL,
    target_id        uuid,
    ip               text,
    details          jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- An organization's trail, newest first, keyset-paginated.
CREATE INDEX accounts_audit_events_org_order ON accounts_audit_events (org_id, created_at DESC, id DESC);
