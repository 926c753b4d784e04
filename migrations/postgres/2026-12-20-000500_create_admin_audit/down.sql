DROP TABLE admin_audit;
DROP FUNCTION admin_audit_append_only();
