CREATE SCHEMA IF NOT EXISTS onboarding;

-- One business verification (KYB) per merchant application. `merchant_id` is the subject the
-- provider knows it by (its calls are idempotent by it); `provider_reference` is the provider's
-- own id of the check, `reason` why it was rejected. Today a row is written `pending` and
-- decided in the same transaction as the provider call; `pending` is there for providers that
-- answer later (a webhook), which would commit the pending row first.
CREATE TABLE onboarding.business_verifications (
    id text PRIMARY KEY,
    merchant_id text NOT NULL UNIQUE,
    legal_name text NOT NULL,
    country text NOT NULL,
    website text,
    status text NOT NULL CHECK (status IN ('pending', 'verified', 'rejected')),
    provider_reference text,
    reason text,
    requested_at timestamptz NOT NULL,
    decided_at timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
