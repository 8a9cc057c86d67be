-- The uploads export source reads an organization's uploads in (created_at, id) order,
-- a page at a time.
-- Built CONCURRENTLY (outside a transaction): writes to a large table go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS uploads_created_order ON uploads (org_id, created_at, id);
