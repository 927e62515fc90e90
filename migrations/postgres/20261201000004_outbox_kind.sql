-- What each outbox row is, so storage matches rows by kind instead of by patterns over their
-- dedupe keys (`LIKE 'delivery:%:answer:%'`). The keys stay as they are: they name a write and,
-- for updates, a revision number, never an answer.
--
-- kind: pulse (the DM) | reminder (its thread reply) | answer_update (the DM redrawn after an
--   answer) | closed_update (the DM redrawn at the close) | late_notice (the ephemeral note for
--   a click after the close) | other (writes about no pulse).
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'other'
    CHECK (kind IN ('pulse', 'reminder', 'answer_update', 'closed_update', 'late_notice', 'other'));

-- Rows written before this migration: their kind from the key patterns of the time.
UPDATE outbox SET kind = CASE
    WHEN dedupe_key LIKE 'delivery:%:post' THEN 'pulse'
    WHEN dedupe_key LIKE 'delivery:%:remind' THEN 'reminder'
    WHEN dedupe_key LIKE 'delivery:%:answer:%' THEN 'answer_update'
    WHEN dedupe_key LIKE 'delivery:%:closed' THEN 'closed_update'
    WHEN dedupe_key LIKE 'delivery:%:late:%' THEN 'late_notice'
    ELSE 'other'
END;
