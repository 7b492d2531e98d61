-- Settlements (DOMAIN.md "Merchant fees and settlement"). What a merchant is owed arrives as
-- signed items from checkout's events (captures +, refunds and capture fees -); a day's
-- settlement claims every item not settled before whose time is before the day's end, so an
-- item that arrives late is in the next settlement, never lost and never in two.
CREATE TABLE merchants.settlement_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    type text NOT NULL CHECK (type IN ('capture', 'refund', 'fee', 'carried_over')),
    reference text NOT NULL,
    checkout_id text,
    amount bigint NOT NULL CHECK ((type = 'capture') = (amount > 0) AND amount <> 0),
    occurred_at timestamptz NOT NULL,
    settlement_id text,
    -- One capture and one fee per checkout, one item per refund, one carry per settlement:
    -- an event delivered twice adds nothing.
    UNIQUE (type, reference)
);
CREATE INDEX settlement_items_unsettled ON merchants.settlement_items (occurred_at)
    WHERE settlement_id IS NULL;
CREATE INDEX settlement_items_settlement ON merchants.settlement_items (settlement_id, id)
    WHERE settlement_id IS NOT NULL;

CREATE TABLE merchants.settlements (
    id text PRIMARY KEY,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    captured bigint NOT NULL CHECK (captured >= 0),
    refunded bigint NOT NULL CHECK (refunded >= 0),
    fees bigint NOT NULL CHECK (fees >= 0),
    carried_over bigint NOT NULL CHECK (carried_over <= 0),
    net bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'carried_over')),
    -- carried_over: the later settlement that netted this one's shortfall (NULL: not yet).
    carried_into text,
    -- pending: the payout's attempt (its idempotency key is `<id>.<attempt>`), when it is
    -- (re)sent, and why the provider last refused it.
    payout_attempt integer NOT NULL DEFAULT 1,
    payout_due_at timestamptz,
    payout_failure text,
    payout_reference text,
    created_at timestamptz NOT NULL,
    paid_at timestamptz,
    UNIQUE (merchant_id, currency, period_start),
    CHECK (net = captured - refunded - fees + carried_over),
    CHECK (status <> 'pending' OR (net > 0 AND payout_due_at IS NOT NULL)),
    CHECK (status <> 'carried_over' OR net < 0),
    CHECK (status <> 'paid' OR (net >= 0 AND paid_at IS NOT NULL))
);
CREATE INDEX settlements_merchant ON merchants.settlements (merchant_id, id);
CREATE INDEX settlements_payout_due ON merchants.settlements (payout_due_at)
    WHERE status = 'pending';
CREATE UNIQUE INDEX settlements_open_carry ON merchants.settlements (merchant_id, currency)
    WHERE status = 'carried_over' AND carried_into IS NULL;

-- The UTC days settled, in order: the next one is due at the midnight after it.
CREATE TABLE merchants.settlement_days (
    day date PRIMARY KEY,
    settlements integer NOT NULL,
    settled_at timestamptz NOT NULL
);
