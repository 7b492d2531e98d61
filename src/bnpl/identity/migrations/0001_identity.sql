CREATE SCHEMA IF NOT EXISTS identity;

-- Consumers. Email stays plaintext (it is the login and must be unique case-insensitively);
-- phone, date of birth and address are AES-256-GCM ciphertexts (key version byte, 96-bit
-- nonce, ciphertext and tag), bound to their row and column by the associated data.
CREATE TABLE identity.consumers (
    id text PRIMARY KEY,
    email text NOT NULL,
    password_hash text NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    phone_enc bytea,
    date_of_birth_enc bytea NOT NULL,
    address_enc bytea NOT NULL,
    kyc_status text NOT NULL DEFAULT 'pending'
        CHECK (kyc_status IN ('pending', 'verified', 'rejected')),
    kyc_reference text,
    kyc_reason text,
    kyc_checked_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- One account per email, whatever its case: the index, not a read-then-write, decides races.
CREATE UNIQUE INDEX consumers_email ON identity.consumers (lower(email));

-- A session is one login and the family of refresh tokens rotated from it. Revoking it (logout,
-- refresh-token reuse) stops every access token that carries its id at once: the access-token
-- resolver looks the session up by primary key on every request.
CREATE TABLE identity.sessions (
    id text PRIMARY KEY,
    consumer_id text NOT NULL REFERENCES identity.consumers (id),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_consumer ON identity.sessions (consumer_id);

-- Refresh tokens are opaque random strings stored only as their SHA-256. Each works once:
-- `used_at` is set atomically when it is exchanged.
CREATE TABLE identity.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id text NOT NULL REFERENCES identity.sessions (id),
    consumer_id text NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX refresh_tokens_session ON identity.refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON identity.refresh_tokens (expires_at);

-- Payment methods hold only the gateway's token (encrypted too), brand, last 4 digits and
-- expiry; never the card number or CVC. Deleting one is a soft delete: plans and payments may
-- still name it.
CREATE TABLE identity.payment_methods (
    id text PRIMARY KEY,
    consumer_id text NOT NULL REFERENCES identity.consumers (id),
    type text NOT NULL CHECK (type IN ('card')),
    token_enc bytea NOT NULL,
    brand text NOT NULL,
    last4 text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    exp_month smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX payment_methods_consumer ON identity.payment_methods (consumer_id, id)
    WHERE deleted_at IS NULL;
