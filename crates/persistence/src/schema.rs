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
