CREATE SCHEMA IF NOT EXISTS ledger;

-- The journal: one row per entry, one row per line. Append-only (triggers below); corrections
-- are new entries. `amount` is the entry's total (its debits, which equal its credits), kept
-- so that a replayed idempotency key can be compared with what it first wrote.
CREATE TABLE ledger.entries (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind <> ''),
    reference_id text NOT NULL CHECK (reference_id <> ''),
    currency text NOT NULL CHECK (currency IN ('USD', 'EUR', 'GBP', 'CAD', 'AUD')),
    amount bigint NOT NULL CHECK (amount > 0),
    at timestamptz NOT NULL,            -- business time (the platform clock)
    consumer_id text,
    merchant_id text,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now()  -- wall-clock time of the write
);
-- At-least-once consumers replay postings: a replayed key writes nothing.
CREATE UNIQUE INDEX entries_idempotency_key ON ledger.entries (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX entries_reference ON ledger.entries (reference_id);
CREATE INDEX entries_consumer ON ledger.entries (consumer_id, id) WHERE consumer_id IS NOT NULL;
CREATE INDEX entries_merchant ON ledger.entries (merchant_id, id) WHERE merchant_id IS NOT NULL;

CREATE TABLE ledger.lines (
    entry_id text NOT NULL REFERENCES ledger.entries (id),
    line_no smallint NOT NULL,
    account text NOT NULL CHECK (account ~ '^[a-z_]+$'),
    side text NOT NULL CHECK (side IN ('debit', 'credit')),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,             -- always the entry's (denormalized for per-currency sums)
    PRIMARY KEY (entry_id, line_no)
);

-- Running totals per account and currency, spread over buckets so that postings never queue
-- on one hot row. A posting adds to any bucket no other transaction holds (FOR UPDATE SKIP
-- LOCKED) and opens a new bucket at a random slot when all are held, so it does not wait on
-- other postings and cannot deadlock with them (bar a 1-in-2^31 slot collision, which only
-- waits); the number of buckets settles at the peak number of concurrent posters per account. A
-- balance is the sum of its buckets. Derived data: `GET /v1/ledger/verify` checks it against
-- the journal. Only debits/credits change, so updates stay HOT (hence the fillfactor).
CREATE TABLE ledger.balance_buckets (
    account text NOT NULL,
    currency text NOT NULL,
    slot integer NOT NULL,
    debits bigint NOT NULL DEFAULT 0 CHECK (debits >= 0),
    credits bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    PRIMARY KEY (account, currency, slot)
) WITH (fillfactor = 50);

-- Journal rows are never edited or deleted.
CREATE FUNCTION ledger.forbid_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger journal is append-only: % on ledger.% refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'post a correcting entry instead';
END $$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON ledger.entries
    FOR EACH ROW EXECUTE FUNCTION ledger.forbid_changes();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger.entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.forbid_changes();
CREATE TRIGGER lines_append_only BEFORE UPDATE OR DELETE ON ledger.lines
    FOR EACH ROW EXECUTE FUNCTION ledger.forbid_changes();
CREATE TRIGGER lines_no_truncate BEFORE TRUNCATE ON ledger.lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.forbid_changes();
