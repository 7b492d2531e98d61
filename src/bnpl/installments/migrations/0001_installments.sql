CREATE SCHEMA IF NOT EXISTS installments;

-- One plan per authorized checkout. `principal` is the current principal (the sum of its
-- installments' principals: it shrinks by what refunds apply to the plan);
-- `original_principal` is the amount financed at authorization; `refunded_amount` is every
-- refund (and released part of a partial capture) taken so far, including what went back
-- to the consumer, so a plan can never be refunded beyond what it financed.
--
-- Sharding (ARCHITECTURE.md, "Scale"): both tables carry `consumer_id`, the distribution
-- column, and there are no foreign keys to other contexts. Distributed with Citus, the
-- unique keys widen to include it ((consumer_id, id), (consumer_id, checkout_id),
-- (consumer_id, plan_id, seq)); on one node the narrower keys below are stricter.
CREATE TABLE installments.plans (
    id text PRIMARY KEY CHECK (id LIKE 'pln\_%'),
    consumer_id text NOT NULL,
    merchant_id text NOT NULL,
    checkout_id text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('pay_in_4', 'monthly_6', 'monthly_12')),
    currency text NOT NULL CHECK (currency IN ('USD', 'EUR', 'GBP', 'CAD', 'AUD')),
    principal bigint NOT NULL CHECK (principal >= 0),
    original_principal bigint NOT NULL CHECK (original_principal > 0),
    refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    apr_bps integer NOT NULL CHECK (apr_bps >= 0),
    status text NOT NULL CHECK (
        status IN ('active', 'delinquent', 'paid_off', 'refunded', 'canceled', 'charged_off')
    ),
    payment_method_id text NOT NULL,
    late_fees_total bigint NOT NULL DEFAULT 0 CHECK (late_fees_total >= 0),
    authorization_date date NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL DEFAULT 1,
    CHECK (principal <= original_principal),
    CHECK (refunded_amount <= original_principal)
);
-- A consumer's plans by status (credit: delinquent plans, open exposure) and newest first.
CREATE INDEX plans_consumer_status ON installments.plans (consumer_id, status);
CREATE INDEX plans_consumer_id ON installments.plans (consumer_id, id);

-- Amounts are what is owed for the installment (waived parts are removed from them), and
-- what was paid against each component; nothing is negative and nothing is overpaid.
CREATE TABLE installments.installments (
    plan_id text NOT NULL REFERENCES installments.plans (id),
    consumer_id text NOT NULL,
    seq smallint NOT NULL CHECK (seq >= 1),
    due_date date NOT NULL,
    principal bigint NOT NULL CHECK (principal >= 0),
    interest bigint NOT NULL CHECK (interest >= 0),
    fees bigint NOT NULL DEFAULT 0 CHECK (fees >= 0),
    principal_paid bigint NOT NULL DEFAULT 0 CHECK (principal_paid BETWEEN 0 AND principal),
    interest_paid bigint NOT NULL DEFAULT 0 CHECK (interest_paid BETWEEN 0 AND interest),
    fees_paid bigint NOT NULL DEFAULT 0 CHECK (fees_paid BETWEEN 0 AND fees),
    status text NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'paid', 'late', 'canceled')),
    paid_at timestamptz,
    PRIMARY KEY (plan_id, seq),
    -- A closed installment owes nothing more.
    CHECK (
        status IN ('scheduled', 'late')
        OR (principal_paid = principal AND interest_paid = interest AND fees_paid = fees)
    )
);
-- Collection, reminder and late-fee runs walk open installments by due date, in batches.
CREATE INDEX installments_open_due ON installments.installments (due_date)
    WHERE status IN ('scheduled', 'late');
