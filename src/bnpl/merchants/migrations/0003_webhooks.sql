-- Webhooks (API.md "Webhooks"). An endpoint's signing secret is stored only encrypted
-- (AES-256-GCM, bound to the endpoint id); a deleted endpoint keeps its row.
CREATE TABLE merchants.webhook_endpoints (
    id text PRIMARY KEY,
    merchant_id text NOT NULL,
    url text NOT NULL,
    events text[] NOT NULL CHECK (cardinality(events) > 0),
    secret_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX webhook_endpoints_merchant ON merchants.webhook_endpoints (merchant_id, id)
    WHERE deleted_at IS NULL;

-- What is to be sent: one job per endpoint and event (and one more per redelivery), with the
-- body signed on every attempt. Jobs of one endpoint and aggregate go out in id order: a job
-- waits while an earlier one of its chain is pending.
CREATE TABLE merchants.webhook_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    aggregate_id text NOT NULL,
    body text NOT NULL,
    redelivery boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'canceled')),
    next_attempt_at timestamptz,
    created_at timestamptz NOT NULL,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The consumer's inbox already dedupes events; this makes a job per event certain.
CREATE UNIQUE INDEX webhook_jobs_once ON merchants.webhook_jobs (endpoint_id, event_id)
    WHERE NOT redelivery;
CREATE INDEX webhook_jobs_chain ON merchants.webhook_jobs (endpoint_id, aggregate_id, id)
    WHERE status = 'pending';
CREATE INDEX webhook_jobs_due ON merchants.webhook_jobs (next_attempt_at)
    WHERE status = 'pending';

-- One row per attempt, as `GET /v1/webhook_endpoints/{id}/deliveries` shows it.
CREATE TABLE merchants.webhook_deliveries (
    id text PRIMARY KEY,
    endpoint_id text NOT NULL,
    job_id bigint NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    attempt integer NOT NULL CHECK (attempt > 0),
    status_code integer,
    error text,
    created_at timestamptz NOT NULL,
    UNIQUE (job_id, attempt)
);
CREATE INDEX webhook_deliveries_endpoint ON merchants.webhook_deliveries (endpoint_id, id);
