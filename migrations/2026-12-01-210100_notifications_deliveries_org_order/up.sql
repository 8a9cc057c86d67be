-- The webhook-deliveries export source reads an organization's deliveries in
-- (created_at, id) order, a page at a time.
CREATE INDEX notifications_webhook_deliveries_org_order ON notifications_webhook_deliveries (org_id, created_at, id);
