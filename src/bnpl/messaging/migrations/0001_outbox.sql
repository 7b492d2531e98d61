CREATE SCHEMA IF NOT EXISTS messaging;

-- The transactional outbox: an event row commits with the business change that caused it.
-- `position` is assigned after commit by the sequencer, in commit order; consumers read by it.
CREATE TABLE messaging.events (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    type text NOT NULL,
    aggregate_id text NOT NULL,
    data jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    merchant_id text,
    consumer_id text,
    position bigint
);
CREATE UNIQUE INDEX events_position ON messaging.events (position) WHERE position IS NOT NULL;
CREATE INDEX events_unsequenced ON messaging.events (id) WHERE position IS NULL;
CREATE INDEX events_merchant ON messaging.events (merchant_id, id) WHERE merchant_id IS NOT NULL;
CREATE INDEX events_type ON messaging.events (type, id);

CREATE TABLE messaging.sequencer (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_position bigint NOT NULL
);
INSERT INTO messaging.sequencer VALUES (1, 0);

-- One cursor per consumer; a worker holds its row lock while it dispatches a batch.
CREATE TABLE messaging.cursors (
    consumer text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotent consumers: an event is handled once per consumer.
CREATE TABLE messaging.inbox (
    consumer text NOT NULL,
    event_id text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events a consumer gave up on after its retries, for an operator to look at and replay.
CREATE TABLE messaging.dead_letters (
    consumer text NOT NULL,
    event_id text NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
