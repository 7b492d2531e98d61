-- The payout simulator's record: one row per idempotency key, so a repeated call pays nothing
-- twice. `status`: paid | failing (a flaky account's first answers) | rejected.
CREATE TABLE sandbox.payouts (
    id text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    reference text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    account_last4 text NOT NULL,
    routing_number text,
    status text NOT NULL CHECK (status IN ('paid', 'failing', 'rejected')),
    failure_code text,
    attempts integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_reference ON sandbox.payouts (reference, created_at);
