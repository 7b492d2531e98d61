CREATE SCHEMA IF NOT EXISTS credit;

-- One credit account per consumer: the credit limit and the principal of open plans counted
-- against it. The row is the exposure check's lock (SELECT ... FOR UPDATE), so simultaneous
-- confirms never push `open_principal` over `credit_limit`. No foreign key to identity: no
-- context references another's tables (and none crosses shards).
CREATE TABLE credit.accounts (
    consumer_id text PRIMARY KEY,
    credit_limit bigint NOT NULL CHECK (credit_limit >= 0),
    open_principal bigint NOT NULL DEFAULT 0 CHECK (open_principal >= 0),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
