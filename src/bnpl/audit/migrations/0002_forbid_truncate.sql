-- TRUNCATE fires no row triggers, so the append-only rule needs a statement trigger too.
CREATE FUNCTION audit.forbid_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END $$;
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON audit.records
    FOR EACH STATEMENT EXECUTE FUNCTION audit.forbid_truncate();
