DROP TABLE accounts_audit_events;
DROP TABLE accounts_tokens;
DROP TABLE accounts_api_keys;
DROP TABLE accounts_sessions;
DROP TABLE accounts_memberships;
DROP TABLE accounts_organizations;
DROP TABLE accounts_users;
