-- The `just bench-1m` fixture: 1,000 organizations of 10 users each (an owner, an admin,
-- eight members), a session per user, an API key, an upload and a webhook endpoint per
-- organization, 1,000,000 audit events and 100,000 notifications (10 events per
-- organization, each in its 10 members' inboxes). Written with INSERT ... SELECT over
-- generate_series, in one transaction, into a database migrated by `keel migrate`.
--
-- Ids and secrets are derived from the row's number (md5 for uuids, sha256 for tokens),
-- so the request list can be written from the database alone and the fixture reused
-- between runs: million.sh only refreshes the sessions' expiry. Secrets are the same
-- shape as real ones (prefix + 43 base64url characters), stored only as their SHA-256.
--
-- psql variables: receiver (the webhook receiver's URL).

\set ON_ERROR_STOP on
BEGIN;

\ir functions.sql

INSERT INTO accounts_organizations (id, name)
SELECT pg_temp.bench_uuid('org', o), 'Bench organization ' || o
FROM generate_series(0, 999) AS o;

INSERT INTO accounts_users (id, email, name, password_hash, email_verified_at, created_at)
SELECT pg_temp.bench_uuid('user', u), 'bench-user-' || u || '@example.com', 'Bench user ' || u,
       '$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcGFzc3dvcmQ$bm90LWEtcGFzc3dvcmQtaGFzaC1hdC1hbGwtMzI',
       now(), now() - interval '30 days'
FROM generate_series(0, 9999) AS u;

INSERT INTO accounts_memberships (org_id, user_id, role, created_at)
SELECT pg_temp.bench_uuid('org', u / 10), pg_temp.bench_uuid('user', u),
       CASE u % 10 WHEN 0 THEN 'owner' WHEN 1 THEN 'admin' ELSE 'member' END,
       now() - interval '30 days' + (u % 10) * interval '1 minute'
FROM generate_series(0, 9999) AS u;

INSERT INTO accounts_sessions (id, token_hash, user_id, org_id, expires_at)
SELECT pg_temp.bench_uuid('session', u),
       sha256(convert_to(pg_temp.bench_secret('keel_sess_', 'session', u), 'UTF8')),
       pg_temp.bench_uuid('user', u), pg_temp.bench_uuid('org', u / 10), now() + interval '12 hours'
FROM generate_series(0, 9999) AS u;

INSERT INTO accounts_api_keys (id, org_id, created_by, name, prefix, secret_hash, scopes)
SELECT pg_temp.bench_uuid('key', o), pg_temp.bench_uuid('org', o), pg_temp.bench_uuid('user', o * 10),
       'bench', left(pg_temp.bench_secret('keel_key_', 'key', o), 13),
       sha256(convert_to(pg_temp.bench_secret('keel_key_', 'key', o), 'UTF8')), '{accounts:read}'
FROM generate_series(0, 999) AS o;

INSERT INTO uploads (id, org_id, uploaded_by_user, method, state, file_name, declared_type,
                     detected_type, size_bytes, received_bytes, sha256, object_key, processed_at)
SELECT pg_temp.bench_uuid('upload', o), pg_temp.bench_uuid('org', o), pg_temp.bench_uuid('user', o * 10),
       'direct', 'ready', 'bench-' || o || '.txt', 'text/plain', 'text/plain', 25, 25,
       encode(sha256(convert_to('bench upload ' || o, 'UTF8')), 'hex'), 'bench/' || o, now()
FROM generate_series(0, 999) AS o;
INSERT INTO uploads_usage (org_id, bytes)
SELECT pg_temp.bench_uuid('org', o), 25 FROM generate_series(0, 999) AS o;

INSERT INTO notifications_webhook_endpoints (id, org_id, url, description, event_types, secret)
SELECT pg_temp.bench_uuid('webhook', o), pg_temp.bench_uuid('org', o), :'receiver', 'bench receiver',
       '{*}', pg_temp.bench_secret('whsec_', 'webhook', o)
FROM generate_series(0, 999) AS o;

-- 1,000 per organization, one a minute back from now, newest first in the index.
INSERT INTO accounts_audit_events (id, org_id, actor_user_id, action, target_id, ip, details, created_at)
SELECT gen_random_uuid(), pg_temp.bench_uuid('org', g % 1000), pg_temp.bench_uuid('user', (g % 1000) * 10),
       (ARRAY['member.invited', 'member.role_changed', 'api_key.created', 'webhook.created'])[1 + g % 4],
       pg_temp.bench_uuid('user', (g % 1000) * 10 + 1 + g % 9), '203.0.113.' || (g % 250),
       jsonb_build_object('email_domain', 'example.com', 'role', 'member'),
       now() - (g / 1000) * interval '1 minute'
FROM generate_series(0, 999999) AS g;

INSERT INTO notifications_events (id, org_id, event_type, event, created_at)
SELECT pg_temp.bench_uuid('event', e), pg_temp.bench_uuid('org', e % 1000), 'member.joined',
       jsonb_build_object('title', 'A new member joined', 'body', 'Say hello to bench user ' || e),
       now() - (e / 1000) * interval '1 hour'
FROM generate_series(0, 9999) AS e;

-- Every event in each of its organization's 10 members' inboxes; every other one read.
INSERT INTO notifications_inbox (id, event_id, org_id, user_id, event_type, title, body, link, data, read_at, created_at)
SELECT pg_temp.bench_uuid('inbox', e * 10 + m), pg_temp.bench_uuid('event', e), pg_temp.bench_uuid('org', e % 1000),
       pg_temp.bench_uuid('user', (e % 1000) * 10 + m), 'member.joined', 'A new member joined',
       'Say hello to bench user ' || e, '/members', '{}',
       CASE WHEN e % 2 = 0 THEN now() END, now() - (e / 1000) * interval '1 hour'
FROM generate_series(0, 9999) AS e, generate_series(0, 9) AS m;

CREATE TABLE bench_fixture (version integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench_fixture (version) VALUES (1);

COMMIT;
VACUUM (ANALYZE);
