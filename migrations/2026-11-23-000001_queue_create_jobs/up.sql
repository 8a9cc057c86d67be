-- The durable job record. Postgres is the source of truth for every job; Redis (apalis)
-- only carries doorbells that tell a worker which row to claim.
CREATE TABLE queue_jobs (
    id            uuid PRIMARY KEY,
    -- Stable job name, "domain.verb_noun".
    kind          text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$'),
    payload       jsonb       NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
                              CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  integer     NOT NULL CHECK (max_attempts > 0),
    timeout_ms    integer     NOT NULL CHECK (timeout_ms > 0),
    -- Not claimable before this time (first run, or the next retry after a backoff).
    run_at        timestamptz NOT NULL DEFAULT now(),
    -- While running: the claim is valid until then; after it a reconciler may re-deliver.
    lease_until   timestamptz,
    locked_by     text,
    -- When a doorbell for this row was last pushed to Redis.
    doorbell_at   timestamptz,
    last_error    text,
    -- W3C trace context of the enqueuing request: {"traceparent": ..., "tracestate": ...}.
    trace_context jsonb,
    -- Deduplicates enqueues (e.g. one row per cron tick across processes).
    unique_key    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE UNIQUE INDEX queue_jobs_kind_unique_key ON queue_jobs (kind, unique_key) WHERE unique_key IS NOT NULL;
-- Reconciler: pending rows that are due, in due order.
CREATE INDEX queue_jobs_pending_run_at ON queue_jobs (run_at) WHERE state = 'pending';
-- Reconciler: running rows whose lease expired.
CREATE INDEX queue_jobs_running_lease ON queue_jobs (lease_until) WHERE state = 'running';
-- Admin: dead jobs, newest first, keyset-paginated.
CREATE INDEX queue_jobs_dead_finished ON queue_jobs (finished_at DESC, id DESC) WHERE state = 'dead';
-- Retention sweep of finished jobs.
CREATE INDEX queue_jobs_succeeded_finished ON queue_jobs (finished_at) WHERE state = 'succeeded';
-- Backlog counts by kind and state (succeeded rows are not backlog).
CREATE INDEX queue_jobs_backlog ON queue_jobs (kind, state, run_at) WHERE state <> 'succeeded';
