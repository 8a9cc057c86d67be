-- Notifications: published events, in-app notifications, per-user preferences, webhook
-- endpoints and their delivery log. Organization and user ids are not foreign keys into
-- accounts' tables: the domains share a database, not a schema, so either can move out.

CREATE TABLE notifications_events (
    id         uuid PRIMARY KEY,
    org_id     uuid        NOT NULL,
    event_type text        NOT NULL,
    -- The whole keel_events::Event as published (audience, title, body, link, data).
    event      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications_inbox (
    -- uuid v7: time-ordered, so it is also the keyset of "newest first".
    id         uuid PRIMARY KEY,
    event_id   uuid        NOT NULL REFERENCES notifications_events (id) ON DELETE CASCADE,
    org_id     uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    event_type text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    link       text,
    data       jsonb       NOT NULL,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One event never notifies one person twice, even when the fan-out runs twice.
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_inbox_list ON notifications_inbox (user_id, org_id, id DESC);
CREATE INDEX notifications_inbox_unread ON notifications_inbox (user_id, org_id) WHERE read_at IS NULL;

-- Only choices that differ from the default (every channel on) are stored.
CREATE TABLE notifications_preferences (
    user_id    uuid        NOT NULL,
    event_type text        NOT NULL,
    channel    text        NOT NULL CHECK (channel IN ('in_app', 'email')),
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_type, channel)
);

CREATE TABLE notifications_webhook_endpoints (
    id                         uuid PRIMARY KEY,
    org_id                     uuid        NOT NULL,
    url                        text        NOT NULL,
    description                text        NOT NULL DEFAULT '',
    -- Event types delivered; '*' means all.
    event_types                text[]      NOT NULL,
    -- Kept in clear: HMAC signing needs the secret itself.
    secret                     text        NOT NULL,
    -- After a rotation the old secret signs too, until it expires.
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    enabled                    boolean     NOT NULL DEFAULT true,
    disabled_reason            text,
    -- Failed attempts in a row; reset by any success. Drives the breaker and disabling.
    consecutive_failures       integer     NOT NULL DEFAULT 0,
    -- While in the future, deliveries wait instead of calling the receiver.
    breaker_open_until         timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_webhook_endpoints_org ON notifications_webhook_endpoints (org_id, id);

CREATE TABLE notifications_webhook_deliveries (
    -- Sent as the delivery id header: receivers deduplicate on it.
    id               uuid PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES notifications_webhook_endpoints (id) ON DELETE CASCADE,
    org_id           uuid        NOT NULL,
    -- NULL for test deliveries.
    event_id         uuid        REFERENCES notifications_events (id) ON DELETE CASCADE,
    event_type       text        NOT NULL,
    -- The exact JSON body sent on every attempt.
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    response_status  integer,
    latency_ms       integer,
    error            text,
    response_excerpt text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    -- One event is delivered to one endpoint once, even when the fan-out runs twice.
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX notifications_webhook_deliveries_log ON notifications_webhook_deliveries (endpoint_id, id DESC);
