-- Every change made through the admin API: who (`actor`: a digest prefix of the admin token,
-- never the token), when (`at`, epoch ms), what (`kind`, `name`, `action`) and the item before and
-- after as JSON, secrets removed. Append-only: rows are inserted, and deleted only by retention
-- (history.retention_days); the trigger refuses any UPDATE.
CREATE TABLE admin_audit (
    id     TEXT   PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    kind   TEXT   NOT NULL,
    name   TEXT   NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX admin_audit_at ON admin_audit (at DESC);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
