-- Publishable keys (`pk_test_...`): what a merchant's web page carries to show its offers
-- (the merchant widget). They only read offers, so they are not secrets: stored as they are,
-- shown again on request, revocable.
CREATE TABLE merchants.publishable_keys (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants.merchants (id),
    key text NOT NULL UNIQUE,
    livemode boolean NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX publishable_keys_merchant ON merchants.publishable_keys (merchant_id, id);
