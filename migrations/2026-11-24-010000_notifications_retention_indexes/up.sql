-- The retention purge (notifications.purge) finds old events by age and deletes their
-- deliveries by event; the ON DELETE CASCADE from events needs the second index too (the
-- UNIQUE (endpoint_id, event_id) index cannot serve a lookup by event alone).
CREATE INDEX notifications_events_created ON notifications_events (created_at);
CREATE INDEX notifications_webhook_deliveries_event ON notifications_webhook_deliveries (event_id);
