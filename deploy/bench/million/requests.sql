-- The `just bench-1m` request list, one request per line for keel-load (bin/load): 100,000
-- lines over the fixture's 10,000 users, in a fixed shuffled order; keel-load sends line
-- `i mod 100,000` as request `i`, so 1,000,000 requests send each line ten times.
--
--   90% cached reads: /me with a session (40%) or an API key (10%), the unread count
--       (25%), an upload's metadata (15%);
--    9% database reads, a keyset page of 20 that no cache holds: the caller's
--       notifications (3%), the organization's members (3%), its audit trail (3%, as its
--       owner: admins and owners only);
--    1% writes, each enqueuing work: an invitation (an email, an event, a webhook
--       delivery), a webhook test delivery, a notification marked read.
--
-- Tokens and ids are derived from row numbers exactly as fixture.sql derives them.
-- keel-load replaces `{run}` with an id of its run and `{n}` with the request's number:
-- each invitation is to a new address, and the writes that take one carry an
-- `Idempotency-Key` of their own, as a client that may retry sends them.

\ir functions.sql

WITH r AS (
    SELECT n, n % 100 AS k, (n * 7919) % 10000 AS u, ((n * 7919) % 10000) / 10 AS o
    FROM generate_series(0, 99999) AS n
), line AS (
    SELECT n, concat_ws(E'\t',
        CASE
            WHEN k < 40 THEN 'GET /api/v1/me'
            WHEN k < 50 THEN 'GET /api/v1/me'
            WHEN k < 75 THEN 'GET /api/v1/notifications/unread-count'
            WHEN k < 90 THEN 'GET /api/v1/orgs/' || pg_temp.bench_uuid('org', o) || '/uploads/' || pg_temp.bench_uuid('upload', o)
            WHEN k < 93 THEN 'GET /api/v1/notifications?limit=20'
            WHEN k < 96 THEN 'GET /api/v1/orgs/' || pg_temp.bench_uuid('org', o) || '/members?limit=20'
            WHEN k < 99 THEN 'GET /api/v1/orgs/' || pg_temp.bench_uuid('org', o) || '/audit-events?limit=20'
            WHEN n / 100 % 3 = 0 THEN 'POST /api/v1/orgs/' || pg_temp.bench_uuid('org', o) || '/invitations'
            WHEN n / 100 % 3 = 1 THEN 'POST /api/v1/orgs/' || pg_temp.bench_uuid('org', o) || '/webhooks/' || pg_temp.bench_uuid('webhook', o) || '/test'
            ELSE 'POST /api/v1/notifications/' || pg_temp.bench_uuid('inbox', (o + 1000 * (n / 100 % 10)) * 10 + u % 10) || '/read'
        END,
        'Authorization: Bearer ' || CASE
            WHEN k >= 40 AND k < 50 THEN pg_temp.bench_secret('keel_key_', 'key', o)
            WHEN (k >= 96 AND k < 99) OR (k = 99 AND n / 100 % 3 < 2) THEN pg_temp.bench_secret('keel_sess_', 'session', o * 10)
            ELSE pg_temp.bench_secret('keel_sess_', 'session', u)
        END,
        CASE WHEN k = 99 AND n / 100 % 3 < 2 THEN 'Idempotency-Key: {run}-{n}' END,
        CASE WHEN k = 99 AND n / 100 % 3 = 0 THEN 'Content-Type: application/json' END,
        CASE WHEN k = 99 AND n / 100 % 3 = 0 THEN 'body={"email":"invitee-{run}-{n}@example.com","role":"member"}' END
    ) AS text
    FROM r
)
SELECT text FROM line ORDER BY md5(n::text);
