CREATE SCHEMA IF NOT EXISTS platform;

-- The platform clock's offset from wall-clock time, shared by every process (sandbox only
-- ever moves it forward).
CREATE TABLE platform.clock (
    id smallint PRIMARY KEY CHECK (id = 1),
    offset_us bigint NOT NULL DEFAULT 0
);
INSERT INTO platform.clock (id, offset_us) VALUES (1, 0);
