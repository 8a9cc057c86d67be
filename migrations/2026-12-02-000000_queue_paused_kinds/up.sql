-- Job kinds an operator paused: workers do not claim their jobs and the reconciler
-- neither re-rings nor buries them; their rows wait, untouched, until the kind resumes.
CREATE TABLE queue_paused_kinds (
    kind       text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$'),
    paused_at  timestamptz NOT NULL DEFAULT now(),
    -- Who paused it, as the audit log names them.
    paused_by  text NOT NULL
);
