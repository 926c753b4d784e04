DROP TRIGGER admin_audit_no_update;
DROP TABLE admin_audit;
