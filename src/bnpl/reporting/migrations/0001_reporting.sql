CREATE SCHEMA IF NOT EXISTS reporting;

-- Facts the reporting consumer keeps from public events (never read from other contexts'
-- tables): one row per checkout, for its cohort's counts, and one per money figure.
CREATE TABLE reporting.checkouts (
    id text PRIMARY KEY,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    created_at timestamptz NOT NULL,
    authorized boolean NOT NULL DEFAULT false,
    declined boolean NOT NULL DEFAULT false
);
CREATE INDEX checkouts_created ON reporting.checkouts (currency, created_at);
CREATE INDEX checkouts_merchant_created ON reporting.checkouts (merchant_id, currency, created_at);

-- kind: capture (gmv), refund, late_fee, collection_succeeded / collection_failed (one row per
-- answered charge of a plan payment, amount its amount). Unique by (kind, reference), so an
-- event handled twice counts once.
CREATE TABLE reporting.amounts (
    kind text NOT NULL CHECK (kind IN
        ('capture', 'refund', 'late_fee', 'collection_succeeded', 'collection_failed')),
    reference text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    at timestamptz NOT NULL,
    PRIMARY KEY (kind, reference)
);
CREATE INDEX amounts_at ON reporting.amounts (currency, kind, at);
CREATE INDEX amounts_merchant_at ON reporting.amounts (merchant_id, currency, kind, at);
