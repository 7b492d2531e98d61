-- What a credit decision reads under its lock, in one round trip: the account row locked
-- (FOR UPDATE; opened with `p_default_limit` if missing and that is not NULL), the approvals
-- since `p_since`, and the PostgreSQL feature store's row.
--
-- A function, not one SELECT: in READ COMMITTED each statement of a VOLATILE function takes a
-- fresh snapshot, so the approvals counted *after* the lock is granted include those committed
-- by the decision that held it. A single `SELECT ... FOR UPDATE` with a count subquery would
-- count with the snapshot taken before it waited, and N simultaneous confirms could all pass
-- the velocity limit.
CREATE FUNCTION credit.decision_inputs(
    p_consumer_id text, p_since timestamptz, p_default_limit bigint
) RETURNS TABLE (
    credit_limit bigint,
    open_principal bigint,
    approvals_24h bigint,
    on_time_payments integer,
    late_payments integer,
    bureau_score integer,
    bureau_checked_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT a.credit_limit, a.open_principal INTO credit_limit, open_principal
    FROM credit.accounts a WHERE a.consumer_id = p_consumer_id FOR UPDATE;
    IF NOT FOUND AND p_default_limit IS NOT NULL THEN
        -- The account opens on `consumer.kyc_verified`; a confirm may overtake that.
        INSERT INTO credit.accounts AS a (consumer_id, credit_limit)
        VALUES (p_consumer_id, p_default_limit) ON CONFLICT DO NOTHING;
        SELECT a.credit_limit, a.open_principal INTO credit_limit, open_principal
        FROM credit.accounts a WHERE a.consumer_id = p_consumer_id FOR UPDATE;
    END IF;
    credit_limit := coalesce(credit_limit, 0);
    open_principal := coalesce(open_principal, 0);
    SELECT count(*) INTO approvals_24h FROM credit.decisions d
    WHERE d.consumer_id = p_consumer_id AND d.outcome = 'approved' AND d.created_at > p_since;
    SELECT f.on_time_payments, f.late_payments, f.bureau_score, f.bureau_checked_at
    INTO on_time_payments, late_payments, bureau_score, bureau_checked_at
    FROM credit.features f WHERE f.consumer_id = p_consumer_id;
    on_time_payments := coalesce(on_time_payments, 0);
    late_payments := coalesce(late_payments, 0);
    RETURN NEXT;
END
$$;
