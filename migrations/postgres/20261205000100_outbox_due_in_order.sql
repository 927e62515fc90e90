-- Claims walk the due rows in their sending order, (next_attempt_at, id), and stop at the
-- batch size (issue 9). With `id` in the index (SQLite's indexes end in the rowid anyway)
-- PostgreSQL reads the rows in that order straight off the index; without it, it read every
-- due row, checked each one's rate budget and sorted them all to keep a few: milliseconds
-- per claim under a backlog of hundreds, in the writer every answer waits for.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
