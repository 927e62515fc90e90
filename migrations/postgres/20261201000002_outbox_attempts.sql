-- Delivery that never doubles.
--
-- attempt_started_at: set by the worker just before it calls Slack, cleared by the write that
--   records the outcome. A row found with it still set (its worker timed out, lost the
--   connection after sending, or died mid-call) has an unknown outcome: the next worker looks
--   the message up in the conversation (by the key in its metadata) before posting again.
-- first_attempt_at: when the first call for this row started; bounds that look-up (`oldest`).
-- Leases: `leased_by` holds a token unique to one claim, so a worker whose lease expired and
--   was taken over can never mistake the row for its own again.
-- Status 'cancelled' (with the reason in last_error): a DM that must no longer go out, e.g.
--   because its member opted out before it was sent.
ALTER TABLE outbox ADD COLUMN attempt_started_at BIGINT;
ALTER TABLE outbox ADD COLUMN first_attempt_at BIGINT;
