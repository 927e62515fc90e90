-- The outbox's status check without a list. SQLite has no CHECK to add to an existing table,
-- so 20261201000005 checks `status` with triggers, and their `NOT IN (…)` of five values built
-- a temporary b-tree of the list and dropped it again for every row inserted or updated: each
-- answer's DM update, each claim and completion (docs/performance.md, "Triggers without
-- lists"). The same test written out as comparisons; a NULL status passes both forms, and the
-- column is NOT NULL.
DROP TRIGGER outbox_status_insert;
DROP TRIGGER outbox_status_update;
CREATE TRIGGER outbox_status_insert BEFORE INSERT ON outbox
WHEN NOT (NEW.status = 'pending' OR NEW.status = 'in_flight' OR NEW.status = 'sent'
          OR NEW.status = 'failed' OR NEW.status = 'cancelled')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: outbox.status');
END;
CREATE TRIGGER outbox_status_update BEFORE UPDATE OF status ON outbox
WHEN NOT (NEW.status = 'pending' OR NEW.status = 'in_flight' OR NEW.status = 'sent'
          OR NEW.status = 'failed' OR NEW.status = 'cancelled')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: outbox.status');
END;
