// @generated automatically by Diesel CLI.

diesel::table! {
    accounts_api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        created_by -> Nullable<Uuid>,
        name -> Text,
        prefix -> Text,
        secret_hash -> Bytea,
        scopes -> Array<Text>,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accounts_audit_events (id) {
        id -> Uuid,
        org_id -> Nullable<Uuid>,
        actor_user_id -> Nullable<Uuid>,
        actor_api_key_id -> Nullable<Uuid>,
        action -> Text,
        target_id -> Nullable<Uuid>,
        ip -> Nullable<Text>,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accounts_memberships (org_id, user_id) {
        org_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accounts_organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    accounts_sessions (id) {
        id -> Uuid,
        token_hash -> Bytea,
        user_id -> Uuid,
        org_id -> Uuid,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    accounts_tokens (id) {
        id -> Uuid,
        kind -> Text,
        token_hash -> Bytea,
        user_id -> Nullable<Uuid>,
        org_id -> Nullable<Uuid>,
        email -> Nullable<Text>,
        role -> Nullable<Text>,
        invited_by -> Nullable<Uuid>,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accounts_users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    exports (id) {
        id -> Uuid,
        org_id -> Uuid,
        requested_by_user -> Nullable<Uuid>,
        requested_by_key -> Nullable<Uuid>,
        source -> Text,
        format -> Text,
        compress -> Bool,
        filters -> Jsonb,
        state -> Text,
        rows_written -> Int8,
        estimated_rows -> Nullable<Int8>,
        row_count -> Nullable<Int8>,
        size_bytes -> Nullable<Int8>,
        sha256 -> Nullable<Text>,
        object_key -> Nullable<Text>,
        file_name -> Text,
        replica_lsn -> Nullable<PgLsn>,
        error -> Nullable<Text>,
        attempts -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    exports_requests (export_id) {
        export_id -> Uuid,
        org_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    http_idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Bytea,
        status -> Nullable<Int2>,
        headers -> Nullable<Jsonb>,
        body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        alive_at -> Timestamptz,
    }
}

diesel::table! {
    notifications_events (id) {
        id -> Uuid,
        org_id -> Uuid,
        event_type -> Text,
        event -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications_inbox (id) {
        id -> Uuid,
        event_id -> Uuid,
        org_id -> Uuid,
        user_id -> Uuid,
        event_type -> Text,
        title -> Text,
        body -> Text,
        link -> Nullable<Text>,
        data -> Jsonb,
        read_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications_preferences (user_id, event_type, channel) {
        user_id -> Uuid,
        event_type -> Text,
        channel -> Text,
        enabled -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notifications_webhook_deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        org_id -> Uuid,
        event_id -> Nullable<Uuid>,
        event_type -> Text,
        body -> Text,
        status -> Text,
        attempts -> Int4,
        response_status -> Nullable<Int4>,
        latency_ms -> Nullable<Int4>,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notifications_webhook_endpoints (id) {
        id -> Uuid,
        org_id -> Uuid,
        url -> Text,
        description -> Text,
        event_types -> Array<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        consecutive_failures -> Int4,
        breaker_open_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    ops_audit (id) {
        id -> Uuid,
        at -> Timestamptz,
        session_id -> Text,
        ip -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Jsonb,
    }
}

diesel::table! {
    queue_jobs (id) {
        id -> Uuid,
        kind -> Text,
        payload -> Jsonb,
        state -> Text,
        attempts -> Int4,
        max_attempts -> Int4,
        timeout_ms -> Int4,
        run_at -> Timestamptz,
        lease_until -> Nullable<Timestamptz>,
        locked_by -> Nullable<Text>,
        doorbell_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        trace_context -> Nullable<Jsonb>,
        unique_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    queue_paused_kinds (kind) {
        kind -> Text,
        paused_at -> Timestamptz,
        paused_by -> Text,
    }
}

diesel::table! {
    uploads (id) {
        id -> Uuid,
        org_id -> Uuid,
        uploaded_by_user -> Nullable<Uuid>,
        uploaded_by_key -> Nullable<Uuid>,
        method -> Text,
        state -> Text,
        file_name -> Text,
        declared_type -> Text,
        detected_type -> Nullable<Text>,
        size_bytes -> Int8,
        received_bytes -> Int8,
        sha256 -> Nullable<Text>,
        object_key -> Text,
        reason -> Nullable<Text>,
        results -> Jsonb,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    uploads_usage (org_id) {
        org_id -> Uuid,
        bytes -> Int8,
    }
}

diesel::joinable!(accounts_api_keys -> accounts_organizations (org_id));
diesel::joinable!(accounts_api_keys -> accounts_users (created_by));
diesel::joinable!(accounts_audit_events -> accounts_organizations (org_id));
diesel::joinable!(accounts_memberships -> accounts_organizations (org_id));
diesel::joinable!(accounts_memberships -> accounts_users (user_id));
diesel::joinable!(accounts_sessions -> accounts_organizations (org_id));
diesel::joinable!(accounts_sessions -> accounts_users (user_id));
diesel::joinable!(accounts_tokens -> accounts_organizations (org_id));
diesel::joinable!(notifications_inbox -> notifications_events (event_id));
diesel::joinable!(notifications_webhook_deliveries -> notifications_events (event_id));
diesel::joinable!(notifications_webhook_deliveries -> notifications_webhook_endpoints (endpoint_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts_api_keys,
    accounts_audit_events,
    accounts_memberships,
    accounts_organizations,
    accounts_sessions,
    accounts_tokens,
    accounts_users,
    exports,
    exports_requests,
    http_idempotency_keys,
    notifications_events,
    notifications_inbox,
    notifications_preferences,
    notifications_webhook_deliveries,
    notifications_webhook_endpoints,
    ops_audit,
    queue_jobs,
    queue_paused_kinds,
    uploads,
    uploads_usage,
);
