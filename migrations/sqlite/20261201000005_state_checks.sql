-- Stored states are a closed set (issue 7): the database itself refuses a value the code
-- does not know. The values are those the Rust enums write (src/domain/state.rs,
-- domain::program::Anonymity, storage::outbox::OutboxStatus) plus the ones migrations wrote:
-- deliveries become 'closed' at a seal, sealed responses may carry the role 'folded'.
--
-- SQLite cannot add a CHECK to an existing table, so members, rounds, deliveries, responses
-- and wins are rebuilt: copied out, dropped, created again under the SAME name with the
-- checks (same columns in the same order), copied back, indexes recreated. Why not the usual
-- "create new, drop old, rename new": sqlx runs this file in a transaction, where foreign keys
-- cannot be switched off; with `defer_foreign_keys` dropping a parent table counts its
-- children as violations, and a rename never takes that count back, so the commit would fail.
-- Re-inserting the parent rows under the old name does take it back, row by row; the commit
-- then checks that every reference resolves (a test runs `PRAGMA foreign_key_check`).
-- Row ids are copied, so every reference keeps pointing at the same row.
--
-- The outbox gets triggers instead of a rebuild: a concurrent change adds a column to it, and
-- a rebuild with a fixed column list here could drop that column. The triggers apply the same
-- rule (insert, and update of status).
PRAGMA defer_foreign_keys = ON;

-- members ---------------------------------------------------------------------------------
CREATE TABLE members_copy AS SELECT * FROM members;
DROP TABLE members;
CREATE TABLE members (
    id                  INTEGER PRIMARY KEY,
    program_id          TEXT NOT NULL REFERENCES programs(id),
    slack_user_id       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('leader', 'participant')),
    source              TEXT NOT NULL CHECK (source IN ('file', 'usergroup')),
    timezone_override   TEXT,
    slack_tz            TEXT,
    working_days        TEXT,
    state               TEXT NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'paused', 'opted_out', 'deactivated')),
    paused_until        BIGINT,
    slack_deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    is_bot              BOOLEAN NOT NULL DEFAULT FALSE,
    is_restricted       BOOLEAN NOT NULL DEFAULT FALSE,
    status_text         TEXT,
    status_emoji        TEXT,
    profile_refreshed_at BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (program_id, slack_user_id)
);
INSERT INTO members SELECT * FROM members_copy;
DROP TABLE members_copy;
CREATE INDEX members_by_user ON members (slack_user_id);

-- rounds ----------------------------------------------------------------------------------
CREATE TABLE rounds_copy AS SELECT * FROM rounds;
DROP TABLE rounds;
CREATE TABLE rounds (
    id           INTEGER PRIMARY KEY,
    program_id   TEXT NOT NULL,
    survey_id    TEXT NOT NULL,
    period_key   TEXT NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('schedule', 'send_now')),
    state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    opened_at    BIGINT NOT NULL,
    closes_at    BIGINT NOT NULL,
    closed_at    BIGINT,
    sealed_at    BIGINT,
    anonymity    TEXT CHECK (anonymity IN ('anonymous', 'confidential', 'attributed')),
    anonymity_k  BIGINT,
    asked_count  BIGINT,
    answered_count BIGINT,
    UNIQUE (program_id, survey_id, period_key),
    FOREIGN KEY (program_id, survey_id) REFERENCES surveys(program_id, id)
);
INSERT INTO rounds SELECT * FROM rounds_copy;
DROP TABLE rounds_copy;
CREATE INDEX rounds_by_program ON rounds (program_id, opened_at);
CREATE INDEX rounds_open ON rounds (state, closes_at);

-- deliveries ------------------------------------------------------------------------------
CREATE TABLE deliveries_copy AS SELECT * FROM deliveries;
DROP TABLE deliveries;
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    round_id      BIGINT NOT NULL REFERENCES rounds(id),
    member_id     BIGINT NOT NULL REFERENCES members(id),
    state         TEXT NOT NULL CHECK (state IN ('scheduled', 'queued', 'sent', 'answered',
                                                 'expired', 'failed', 'skipped', 'closed')),
    scheduled_at  BIGINT NOT NULL,
    local_time    TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    closes_at     BIGINT NOT NULL,
    remind_at     BIGINT,
    queued_at     BIGINT,
    sent_at       BIGINT,
    reminded_at   BIGINT,
    answered_at   BIGINT,
    closed_at     BIGINT,
    channel_id    TEXT,
    message_ts    TEXT,
    failure_reason TEXT,
    answer_revision BIGINT NOT NULL DEFAULT 0,
    UNIQUE (round_id, member_id)
);
INSERT INTO deliveries SELECT * FROM deliveries_copy;
DROP TABLE deliveries_copy;
CREATE INDEX deliveries_due ON deliveries (state, scheduled_at);
CREATE INDEX deliveries_remind ON deliveries (state, remind_at);
CREATE INDEX deliveries_closing ON deliveries (state, closes_at);
CREATE INDEX deliveries_by_member ON deliveries (member_id);

-- responses -------------------------------------------------------------------------------
CREATE TABLE responses_copy AS SELECT * FROM responses;
DROP TABLE responses;
CREATE TABLE responses (
    id            INTEGER PRIMARY KEY,
    round_id      BIGINT NOT NULL REFERENCES rounds(id),
    delivery_id   BIGINT REFERENCES deliveries(id),
    metric_key    TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('leader', 'participant', 'folded')),
    value_number  DOUBLE PRECISION,
    value_text    TEXT,
    allow_reply   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (delivery_id, metric_key)
);
INSERT INTO responses SELECT * FROM responses_copy;
DROP TABLE responses_copy;
CREATE INDEX responses_by_round ON responses (round_id, metric_key);

-- wins ------------------------------------------------------------------------------------
CREATE TABLE wins_copy AS SELECT * FROM wins;
DROP TABLE wins;
CREATE TABLE wins (
    id             INTEGER PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    author_member_id BIGINT REFERENCES members(id),
    text           TEXT NOT NULL,
    consent        TEXT NOT NULL CHECK (consent IN ('named', 'anonymous', 'private')),
    source_key     TEXT NOT NULL UNIQUE,
    shoutout_channel TEXT,
    shoutout_ts    TEXT,
    created_at     BIGINT NOT NULL,
    round_id       BIGINT,
    answer_key     TEXT
);
INSERT INTO wins SELECT * FROM wins_copy;
DROP TABLE wins_copy;
CREATE INDEX wins_by_program ON wins (program_id, created_at);
CREATE UNIQUE INDEX wins_by_answer ON wins (answer_key);

-- outbox: triggers ------------------------------------------------------------------------
CREATE TRIGGER outbox_status_insert BEFORE INSERT ON outbox
WHEN NEW.status NOT IN ('pending', 'in_flight', 'sent', 'failed', 'cancelled')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: outbox.status');
END;
CREATE TRIGGER outbox_status_update BEFORE UPDATE OF status ON outbox
WHEN NEW.status NOT IN ('pending', 'in_flight', 'sent', 'failed', 'cancelled')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: outbox.status');
END;
