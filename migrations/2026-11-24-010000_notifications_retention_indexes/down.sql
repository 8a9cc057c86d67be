DROP INDEX IF EXISTS notifications_webhook_deliveries_event;
DROP INDEX IF EXISTS notifications_events_created;
