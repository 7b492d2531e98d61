CREATE SCHEMA IF NOT EXISTS payments;

-- A payment is recorded, with the idempotency key it will use at the gateway, in a committed
-- transaction BEFORE the gateway is called; a crash at any point is resumed with the same key,
-- so the gateway never moves the money twice.
CREATE TABLE payments.payments (
    id text PRIMARY KEY,
    consumer_id text NOT NULL,
    plan_id text,
    checkout_id text,
    kind text NOT NULL CHECK (kind IN ('down_payment', 'installment', 'prepayment', 'refund')),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('processing', 'succeeded', 'failed', 'retry_scheduled', 'canceled')),
    failure_code text,
    payment_method_id text,
    gateway_token text,
    gateway_key text NOT NULL UNIQUE,
    gateway_reference text,
    refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    next_attempt_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (refunded_amount <= amount)
);
CREATE INDEX payments_plan ON payments.payments (plan_id, created_at) WHERE plan_id IS NOT NULL;
CREATE INDEX payments_consumer ON payments.payments (consumer_id, id);
CREATE INDEX payments_open ON payments.payments (updated_at) WHERE status = 'processing';

CREATE TABLE payments.attempts (
    payment_id text NOT NULL,
    n integer NOT NULL,
    at timestamptz NOT NULL,
    outcome text NOT NULL,
    code text,
    gateway_reference text,
    PRIMARY KEY (payment_id, n)
);

-- A refund to the consumer is paid back against the charges it came from, newest first.
CREATE TABLE payments.refund_slices (
    refund_id text NOT NULL,
    n integer NOT NULL,
    charge_payment_id text NOT NULL,
    charge_reference text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    gateway_key text NOT NULL UNIQUE,
    gateway_reference text,
    PRIMARY KEY (refund_id, n)
);
