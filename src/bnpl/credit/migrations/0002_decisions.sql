-- Every credit decision, approved or not, with what it was decided from.
CREATE TABLE credit.decisions (
    id text PRIMARY KEY,
    consumer_id text NOT NULL,
    checkout_id text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('approved', 'declined')),
    reasons text[] NOT NULL DEFAULT '{}',
    amount bigint NOT NULL,
    currency text NOT NULL,
    plan text NOT NULL,
    score double precision,          -- probability of default, not money
    model_version text,
    features jsonb NOT NULL,
    bureau text NOT NULL DEFAULT 'not_needed',  -- not_needed | cached | fetched | unavailable
    latency_ms numeric(10, 3) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX decisions_consumer_approved ON credit.decisions (consumer_id, created_at)
    WHERE outcome = 'approved';
CREATE INDEX decisions_checkout ON credit.decisions (checkout_id);

-- The feature store's PostgreSQL backend (Redis replaces it when configured): repayment
-- history kept current by event consumers, and the bureau's answer for thin-file consumers.
CREATE TABLE credit.features (
    consumer_id text PRIMARY KEY,
    on_time_payments integer NOT NULL DEFAULT 0,
    late_payments integer NOT NULL DEFAULT 0,
    bureau_score integer,
    bureau_checked_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
