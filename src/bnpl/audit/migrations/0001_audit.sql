CREATE SCHEMA IF NOT EXISTS audit;

-- Append-only audit records. A record is written in the business transaction it describes
-- (unsealed); the sealer then links committed records into one hash chain in commit order,
-- so the chain never becomes a lock that every write in the platform waits on.
CREATE TABLE audit.records (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    entity_id text,
    request_id text,
    data jsonb,
    chain_index bigint UNIQUE,
    prev_hash bytea,
    hash bytea
);
CREATE INDEX records_unsealed ON audit.records (seq) WHERE chain_index IS NULL;
CREATE INDEX records_entity ON audit.records (entity_id, seq);

CREATE TABLE audit.chain_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_index bigint NOT NULL,
    last_hash bytea NOT NULL
);
INSERT INTO audit.chain_head VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Records are never edited or deleted: the only change allowed is sealing an unsealed one.
CREATE FUNCTION audit.forbid_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit records are append-only';
    END IF;
    IF OLD.chain_index IS NOT NULL
       OR NEW.id IS DISTINCT FROM OLD.id OR NEW.at IS DISTINCT FROM OLD.at
       OR NEW.actor IS DISTINCT FROM OLD.actor OR NEW.action IS DISTINCT FROM OLD.action
       OR NEW.entity_id IS DISTINCT FROM OLD.entity_id
       OR NEW.request_id IS DISTINCT FROM OLD.request_id
       OR NEW.data IS DISTINCT FROM OLD.data THEN
        RAISE EXCEPTION 'audit records are append-only';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records
    FOR EACH ROW EXECUTE FUNCTION audit.forbid_changes();
