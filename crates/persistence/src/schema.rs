//! Diesel table definitions for every table under `migrations/`.
//! Kept in step with the migrations by hand and checked by the `schema_matches_database` test.

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
    accounts_organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
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

diesel::joinable!(accounts_memberships -> accounts_organizations (org_id));
diesel::joinable!(accounts_memberships -> accounts_users (user_id));
diesel::joinable!(accounts_sessions -> accounts_users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    accounts_users,
    accounts_organizations,
    accounts_memberships,
    accounts_sessions,
    accounts_api_keys,
    accounts_tokens,
    accounts_audit_events,
);
