CREATE SCHEMA IF NOT EXISTS gateway;

-- Idempotency keys, per principal, kept 24 hours (wall-clock time, never the sandbox clock).
-- A claimed key is `locked_at` until its request completes; the completing write commits in
-- the same transaction as the request's business change, so a crash never leaves a change
-- without its stored answer.
CREATE TABLE gateway.idempotency_keys (
    owner text NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    locked_at timestamptz,
    completed_at timestamptz,
    response_status smallint,
    response_body bytea,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created ON gateway.idempotency_keys (created_at);
