-- The sandbox simulators' own records: what a real provider would keep on its side.
CREATE SCHEMA IF NOT EXISTS sandbox;

CREATE TABLE sandbox.card_tokens (
    token text PRIMARY KEY,
    behaviour text NOT NULL,
    brand text NOT NULL,
    last4 text NOT NULL,
    exp_month smallint NOT NULL,
    exp_year smallint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per gateway idempotency key: a retry with the same key gets the same outcome and
-- never moves money twice.
CREATE TABLE sandbox.charges (
    id text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    token text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,          -- captured | declined | refunded (fully)
    decline_code text,
    attempts integer NOT NULL DEFAULT 1,
    refunded_amount bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX charges_token ON sandbox.charges (token, created_at);

CREATE TABLE sandbox.refunds (
    id text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    charge_id text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox.verifications (
    kind text NOT NULL,            -- kyc | kyb
    subject_id text NOT NULL,
    id text NOT NULL,
    status text NOT NULL,
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject_id)
);
