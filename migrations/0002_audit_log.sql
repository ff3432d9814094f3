-- The tamper-evident audit log (docs/formats/audit.md).
-- Entries are the leaves of an RFC 6962/9162 Merkle tree, numbered from 0 without gaps. The index
-- is assigned by incrementing the single row of audit_log_head inside the appending transaction:
-- the row lock serialises appenders across every gateway process, and a rolled-back append rolls
-- the counter back with it, so the sequence never has gaps or forks.
CREATE TABLE audit_log_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_index  bigint NOT NULL
);
INSERT INTO audit_log_head (next_index) VALUES (0);

CREATE TABLE audit_entries (
    entry_index  bigint PRIMARY KEY CHECK (entry_index >= 0),
    entry        bytea NOT NULL,          -- canonical entry bytes, exactly what the leaf hashes
    leaf_hash    bytea NOT NULL CHECK (length(leaf_hash) = 32),
    -- projections of the entry for the auditor's filters (the canonical bytes are authoritative)
    recorded_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,
    dataset      text,
    decision     text NOT NULL
);
CREATE INDEX audit_entries_actor ON audit_entries (actor, entry_index);
CREATE INDEX audit_entries_dataset ON audit_entries (dataset, entry_index);
CREATE INDEX audit_entries_action ON audit_entries (action, entry_index);
CREATE INDEX audit_entries_recorded_at ON audit_entries (recorded_at);

CREATE TABLE audit_tree_heads (
    tree_size     bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash     bytea NOT NULL CHECK (length(root_hash) = 32),
    timestamp_ms  bigint NOT NULL,
    signature     bytea NOT NULL CHECK (length(signature) = 64)
);

-- Append-only, whoever asks: UPDATE, DELETE and TRUNCATE are rejected by triggers (a superuser can
-- still disable them; the Merkle tree and signed tree heads are what make that detectable).
CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_tree_heads_append_only BEFORE UPDATE OR DELETE ON audit_tree_heads
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_tree_heads_no_truncate BEFORE TRUNCATE ON audit_tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- The counter only moves forwards: moving it back would make the next append reuse an index.
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_index < OLD.next_index THEN
        RAISE EXCEPTION 'audit_log_head.next_index may only grow (% -> %)', OLD.next_index, NEW.next_index
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_head_forward_only BEFORE UPDATE ON audit_log_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_log_head_no_delete BEFORE DELETE ON audit_log_head
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_log_head_no_truncate BEFORE TRUNCATE ON audit_log_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, audit_tree_heads FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, audit_tree_heads FROM CURRENT_USER;
