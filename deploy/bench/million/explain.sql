-- The plans of the list pages `just bench-1m` reads, on its fixture: each statement as
-- Keel's repositories write it (crates/*/src/repo), a first page and a page after a
-- cursor deep in the list, with the fixture's numbers (1,000 audit events and 10 members
-- per organization, 10 notifications per user). Each should be one index range scan
-- that stops after the page: no sort, no scan of the rest of the organization's rows.
-- psql variables: org, user (uuids of the fixture).

\echo '### members: accounts::repo::list_members (first page)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY OFF)
SELECT m.user_id, u.email, u.name, m.role, m.created_at
FROM accounts_memberships m INNER JOIN accounts_users u ON u.id = m.user_id
WHERE m.org_id = :'org'
ORDER BY m.created_at ASC, m.user_id ASC LIMIT 21;

\echo '### audit events: accounts::repo::list_audit (a page after the 500th)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY OFF)
SELECT id, action, actor_user_id, actor_api_key_id, target_id, ip, details, created_at
FROM accounts_audit_events
WHERE org_id = :'org'
  AND (created_at, id) < (SELECT created_at, id FROM accounts_audit_events WHERE org_id = :'org'
                          ORDER BY created_at DESC, id DESC OFFSET 500 LIMIT 1)
ORDER BY created_at DESC, id DESC LIMIT 21;

\echo '### notifications: notifications::repo::inbox::list (first page)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY OFF)
SELECT id, event_type, title, body, link, data, read_at, created_at
FROM notifications_inbox
WHERE user_id = :'user' AND org_id = :'org'
ORDER BY id DESC LIMIT 21;
