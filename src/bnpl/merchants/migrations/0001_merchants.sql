CREATE SCHEMA IF NOT EXISTS merchants;

-- Merchant profiles and their commercial terms. The settlement account number is stored only
-- encrypted (AES-256-GCM, the merchant id bound in as associated data) plus its last 4 digits
-- for display. `min_amount` / `max_amount` NULL: the widest range of the enabled plans.
CREATE TABLE merchants.merchants (
    id text PRIMARY KEY,
    status text NOT NULL
        CHECK (status IN ('pending_review', 'active', 'rejected', 'suspended')),
    legal_name text NOT NULL,
    website text,
    email text NOT NULL,
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    mcc text NOT NULL CHECK (mcc ~ '^[0-9]{4}$'),
    default_currency text NOT NULL,
    account_ciphertext bytea NOT NULL,
    account_last4 text NOT NULL,
    routing_number text,
    plans text[] NOT NULL CHECK (cardinality(plans) > 0),
    mdr_bps integer NOT NULL CHECK (mdr_bps BETWEEN 0 AND 10000),
    fixed_fee bigint NOT NULL CHECK (fixed_fee >= 0),
    monthly_apr_bps integer NOT NULL CHECK (monthly_apr_bps BETWEEN 0 AND 10000),
    min_amount bigint CHECK (min_amount >= 0),
    max_amount bigint CHECK (max_amount >= 0),
    rejection_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount)
);
CREATE INDEX merchants_status ON merchants.merchants (status, id);

-- Secret API keys, stored only as the SHA-256 of the secret. The unique index resolves a key
-- in one probe; revoked keys keep their row (for the audit trail) with `revoked_at` set.
CREATE TABLE merchants.api_keys (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants.merchants (id),
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    livemode boolean NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_secret_hash ON merchants.api_keys (secret_hash);
CREATE INDEX api_keys_merchant ON merchants.api_keys (merchant_id, id);
