-- Collections (autopay), late fees and charge-offs run on the scheduler over indexed due
-- times, in batches: never one timer or queued job per future installment.
ALTER TABLE installments.plans
    -- When the autopay run should next look at the plan (NULL: nothing to collect until the
    -- plan changes). While a charge is in flight it holds a short lease instead.
    ADD COLUMN collection_due_at timestamptz,
    -- The collection payment in progress (processing, or waiting for its next retry).
    ADD COLUMN collection_payment_id text,
    ADD COLUMN collection_attempt smallint NOT NULL DEFAULT 0,
    -- Installments due up to this date had all their automatic attempts (soft declines).
    ADD COLUMN collection_exhausted_through date,
    -- A hard decline stops autopay until the consumer sets a new payment method.
    ADD COLUMN autopay_blocked boolean NOT NULL DEFAULT false,
    -- While delinquent: when the plan is 120 days past due and is charged off.
    ADD COLUMN charge_off_at timestamptz;

CREATE INDEX plans_collection_due ON installments.plans (collection_due_at)
    WHERE collection_due_at IS NOT NULL;
CREATE INDEX plans_charge_off_due ON installments.plans (charge_off_at)
    WHERE charge_off_at IS NOT NULL;

-- Interest becomes receivable (and is booked) when its installment falls due, or when it is
-- paid early; a flag per installment keeps the booking exactly once.
ALTER TABLE installments.installments
    ADD COLUMN interest_accrued boolean NOT NULL DEFAULT false;
