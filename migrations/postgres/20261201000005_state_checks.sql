-- Stored states are a closed set (issue 7): the database itself refuses a value the code
-- does not know. The values are those the Rust enums write (src/domain/state.rs,
-- domain::program::Anonymity, storage::outbox::OutboxStatus) plus the ones migrations wrote:
-- deliveries become 'closed' at a seal, sealed responses may carry the role 'folded'.
-- (SQLite rebuilds its tables for the same checks; see its migration.)
ALTER TABLE members ADD CONSTRAINT members_role_check CHECK (role IN ('leader', 'participant'));
ALTER TABLE members ADD CONSTRAINT members_source_check CHECK (source IN ('file', 'usergroup'));
ALTER TABLE members ADD CONSTRAINT members_state_check
    CHECK (state IN ('active', 'paused', 'opted_out', 'deactivated'));
ALTER TABLE rounds ADD CONSTRAINT rounds_origin_check CHECK (origin IN ('schedule', 'send_now'));
ALTER TABLE rounds ADD CONSTRAINT rounds_state_check CHECK (state IN ('open', 'closed'));
ALTER TABLE rounds ADD CONSTRAINT rounds_anonymity_check
    CHECK (anonymity IN ('anonymous', 'confidential', 'attributed'));
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('scheduled', 'queued', 'sent', 'answered', 'expired', 'failed', 'skipped', 'closed'));
ALTER TABLE responses ADD CONSTRAINT responses_role_check
    CHECK (role IN ('leader', 'participant', 'folded'));
ALTER TABLE wins ADD CONSTRAINT wins_consent_check CHECK (consent IN ('named', 'anonymous', 'private'));
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'in_flight', 'sent', 'failed', 'cancelled'));
