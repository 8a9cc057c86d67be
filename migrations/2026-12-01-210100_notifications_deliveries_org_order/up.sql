-- The webhook-deliveries export source reads an organization's deliveries in
-- (created_at, id) order, a page at a time.
-- Built CONCURRENTLY (outside a transaction): writes to a large table go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_webhook_deliveries_org_order ON notifications_webhook_deliveries (org_id, created_at, id);
