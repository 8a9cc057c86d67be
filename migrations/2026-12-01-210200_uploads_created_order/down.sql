DROP INDEX uploads_created_order;
