CREATE SCHEMA IF NOT EXISTS checkout;

CREATE TABLE checkout.checkouts (
    id text PRIMARY KEY,
    merchant_id text NOT NULL,
    consumer_id text,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    merchant_reference text,
    items jsonb,
    consumer_email text,
    success_url text,
    cancel_url text,
    -- open | confirming (down payment in flight) | authorized | declined | captured
    -- | partially_refunded | refunded | voided | expired
    status text NOT NULL,
    expires_at timestamptz NOT NULL,
    plan_kind text,
    plan_id text,
    decision_id text,
    decision_outcome text,
    decline_reasons text[],
    down_payment_id text,
    resume_at timestamptz,
    authorized_at timestamptz,
    authorization_expires_at timestamptz,
    captured_amount bigint CHECK (captured_amount > 0),
    captured_at timestamptz,
    fee_amount bigint NOT NULL DEFAULT 0 CHECK (fee_amount >= 0),
    refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (captured_amount IS NULL OR captured_amount <= amount),
    CHECK (refunded_amount <= coalesce(captured_amount, 0))
);
CREATE INDEX checkouts_merchant ON checkout.checkouts (merchant_id, id);
CREATE INDEX checkouts_consumer ON checkout.checkouts (consumer_id, id) WHERE consumer_id IS NOT NULL;
-- Due-time indexes for the scheduler: open checkouts expire after 1 hour, uncaptured
-- authorizations after 7 days, and confirmations interrupted by a crash are resumed.
CREATE INDEX checkouts_open_expiry ON checkout.checkouts (expires_at) WHERE status = 'open';
CREATE INDEX checkouts_authorization_expiry ON checkout.checkouts (authorization_expires_at)
    WHERE status = 'authorized';
CREATE INDEX checkouts_resume ON checkout.checkouts (resume_at) WHERE status = 'confirming';

CREATE TABLE checkout.refunds (
    id text PRIMARY KEY,
    checkout_id text NOT NULL,
    merchant_id text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    reason text,
    applied_to_plan bigint NOT NULL CHECK (applied_to_plan >= 0),
    refunded_to_consumer bigint NOT NULL CHECK (refunded_to_consumer >= 0),
    payment_id text,
    created_at timestamptz NOT NULL,
    CHECK (applied_to_plan + refunded_to_consumer = amount)
);
CREATE INDEX refunds_checkout ON checkout.refunds (checkout_id, id);
