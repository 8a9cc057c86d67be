DROP TABLE queue_paused_kinds;
