DROP TABLE notifications_webhook_deliveries;
DROP TABLE notifications_webhook_endpoints;
DROP TABLE notifications_preferences;
DROP TABLE notifications_inbox;
DROP TABLE notifications_events;
