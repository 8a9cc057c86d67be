-- The uploads export source reads an organization's uploads in (created_at, id) order,
-- a page at a time.
CREATE INDEX uploads_created_order ON uploads (org_id, created_at, id);
