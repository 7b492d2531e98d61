-- A consumer's next wanted events, and whether it has any between its cursor and the head,
-- are found by type and position (`PostgresBus._behind` and `_dispatch`).
CREATE INDEX events_type_position ON messaging.events (type, position)
    WHERE position IS NOT NULL;
