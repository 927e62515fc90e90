-- pulseloop schema (SQLite). The PostgreSQL migration has the same tables and columns.
--
-- Conventions, shared by both databases so that one SQL text serves both:
-- * every *_at column is BIGINT Unix milliseconds (UTC): exact, compares as numbers,
--   no dialect differences in date handling;
-- * JSON documents are TEXT holding serde_json output;
-- * unique keys carry idempotency: writes are INSERT … ON CONFLICT DO NOTHING/UPDATE,
--   never check-then-insert.

-- A coaching program, mirrored from config/programs/<id>.toml (the file is the source of truth).
CREATE TABLE programs (
    id            TEXT PRIMARY KEY,          -- the file's `id`
    name          TEXT NOT NULL,
    timezone      TEXT NOT NULL,             -- IANA zone; program default and digest zone
    start_date    TEXT NOT NULL,             -- local date, anchors every_weeks and the baseline
    settings      TEXT NOT NULL,             -- JSON: thresholds, channels, owners, working days…
    team_id       TEXT,                      -- workspace (multi-workspace installs)
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- A Slack user in a program. Never deleted: a member removed from the file is 'deactivated'
-- so their past answers stay in the aggregates.
CREATE TABLE members (
    id                  INTEGER PRIMARY KEY,
    program_id          TEXT NOT NULL REFERENCES programs(id),
    slack_user_id       TEXT NOT NULL,
    role                TEXT NOT NULL,               -- leader | participant
    source              TEXT NOT NULL,               -- file | usergroup
    timezone_override   TEXT,                        -- from the file; wins over Slack's tz
    slack_tz            TEXT,                        -- from users.info
    working_days        TEXT,                        -- JSON ["MON",…] override, or NULL
    state               TEXT NOT NULL DEFAULT 'active', -- active | paused | opted_out | deactivated
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
CREATE INDEX members_by_user ON members (slack_user_id);

-- A survey of a program. `cadence`/`every_weeks` may be overridden at run time (admin API);
-- the override survives config re-application until cleared.
CREATE TABLE surveys (
    program_id          TEXT NOT NULL REFERENCES programs(id),
    id                  TEXT NOT NULL,
    definition          TEXT NOT NULL,               -- JSON of the validated survey
    cadence_override    TEXT,
    every_weeks_override BIGINT,
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (program_id, id)
);

-- Questions keep their metric key across rewording, so trends survive edits.
CREATE TABLE questions (
    program_id   TEXT NOT NULL,
    survey_id    TEXT NOT NULL,
    metric_key   TEXT NOT NULL,
    position     BIGINT NOT NULL,
    kind         TEXT NOT NULL,                     -- scale | enps | choice | yes_no | text | win
    prompt       TEXT NOT NULL,
    definition   TEXT NOT NULL,                     -- JSON: labels, options
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (program_id, survey_id, metric_key),
    FOREIGN KEY (program_id, survey_id) REFERENCES surveys(program_id, id)
);

-- One firing of a survey for one period. The period key is the cron's nominal local time
-- ("2027-03-29T09:00"), shared by members in every zone.
CREATE TABLE rounds (
    id           INTEGER PRIMARY KEY,
    program_id   TEXT NOT NULL,
    survey_id    TEXT NOT NULL,
    period_key   TEXT NOT NULL,
    origin       TEXT NOT NULL,                     -- schedule | send_now
    state        TEXT NOT NULL DEFAULT 'open',      -- open | closed
    opened_at    BIGINT NOT NULL,
    closes_at    BIGINT NOT NULL,                   -- latest close of its deliveries
    closed_at    BIGINT,
    sealed_at    BIGINT,                            -- anonymous: responses unlinked at close
    UNIQUE (program_id, survey_id, period_key),
    FOREIGN KEY (program_id, survey_id) REFERENCES surveys(program_id, id)
);
CREATE INDEX rounds_by_program ON rounds (program_id, opened_at);
CREATE INDEX rounds_open ON rounds (state, closes_at);

-- One round to one member.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    round_id      BIGINT NOT NULL REFERENCES rounds(id),
    member_id     BIGINT NOT NULL REFERENCES members(id),
    state         TEXT NOT NULL,      -- scheduled | queued | sent | answered | expired | failed | skipped
    scheduled_at  BIGINT NOT NULL,    -- UTC instant of the local firing
    local_time    TEXT NOT NULL,      -- RFC 3339 with the member's offset, for humans
    timezone      TEXT NOT NULL,
    closes_at     BIGINT NOT NULL,
    remind_at     BIGINT,
    queued_at     BIGINT,
    sent_at       BIGINT,
    reminded_at   BIGINT,
    answered_at   BIGINT,             -- cleared when an anonymous round is sealed
    closed_at     BIGINT,
    channel_id    TEXT,               -- where the DM landed (D…), for chat.update
    message_ts    TEXT,
    failure_reason TEXT,
    UNIQUE (round_id, member_id)
);
CREATE INDEX deliveries_due ON deliveries (state, scheduled_at);
CREATE INDEX deliveries_remind ON deliveries (state, remind_at);
CREATE INDEX deliveries_closing ON deliveries (state, closes_at);
CREATE INDEX deliveries_by_member ON deliveries (member_id);

-- Answers. delivery_id links an answer to its member until an anonymous round is sealed;
-- role is kept (not the person) so role breakdowns still work after sealing.
CREATE TABLE responses (
    id            INTEGER PRIMARY KEY,
    round_id      BIGINT NOT NULL REFERENCES rounds(id),
    delivery_id   BIGINT REFERENCES deliveries(id),
    metric_key    TEXT NOT NULL,
    role          TEXT NOT NULL,
    value_number  DOUBLE PRECISION,
    value_text    TEXT,
    allow_reply   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (delivery_id, metric_key)
);
CREATE INDEX responses_by_round ON responses (round_id, metric_key);

-- Small wins, with the author's consent for how they may be shown.
CREATE TABLE wins (
    id             INTEGER PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    author_member_id BIGINT REFERENCES members(id),  -- NULL when consent is anonymous
    text           TEXT NOT NULL,
    consent        TEXT NOT NULL,                   -- named | anonymous | private
    source_key     TEXT NOT NULL UNIQUE,            -- idempotency (slash command id, response)
    shoutout_channel TEXT,
    shoutout_ts    TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX wins_by_program ON wins (program_id, created_at);

-- "You said, we did" notes from owners.
CREATE TABLE actions (
    id            INTEGER PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs(id),
    author_slack_id TEXT NOT NULL,
    text          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    digest_id     BIGINT
);
CREATE INDEX actions_by_program ON actions (program_id, created_at);

-- One digest per program, period and sponsor channel.
CREATE TABLE digests (
    id            INTEGER PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs(id),
    period_start  BIGINT NOT NULL,
    period_end    BIGINT NOT NULL,
    channel_id    TEXT NOT NULL,
    content       TEXT NOT NULL,                    -- JSON of the rendered digest
    created_at    BIGINT NOT NULL,
    UNIQUE (program_id, period_start, channel_id)
);

-- The durable outbox: every write to Slack is a row, written in the same transaction as the
-- change that causes it, and sent by workers that lease rows.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    method          TEXT NOT NULL,                  -- Slack Web API method
    payload         TEXT NOT NULL,                  -- JSON arguments
    channel_key     TEXT,                           -- per-channel rate limiting
    message_key     TEXT,                           -- the message this row posts (for later updates)
    target_key      TEXT,                           -- the message this row updates or replies to
    subject_kind    TEXT,                           -- what to mark on success/failure (delivery, …)
    subject_id      BIGINT,
    delivery_id     BIGINT,                         -- the pulse DM this row is about, if any (sealing)
    status          TEXT NOT NULL DEFAULT 'pending',-- pending | in_flight | sent | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    leased_by       TEXT,
    last_error      TEXT,
    result          TEXT,                           -- JSON of Slack's answer (channel, ts, …)
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_subject ON outbox (subject_kind, subject_id);
CREATE INDEX outbox_by_delivery ON outbox (delivery_id);

-- Where posted messages landed, by message key ("delivery:42"), for chat.update and threads.
CREATE TABLE slack_messages (
    message_key   TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL,
    ts            TEXT NOT NULL,
    posted_at     BIGINT NOT NULL
);

-- Slack retries events; the event_id makes each one count once.
CREATE TABLE slack_events (
    event_id      TEXT PRIMARY KEY,
    event_type    TEXT NOT NULL,
    team_id       TEXT,
    received_at   BIGINT NOT NULL
);

-- Every configuration or state change, who made it and when.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,                      -- config | admin:<who> | member:<U…> | system
    action      TEXT NOT NULL,
    program_id  TEXT,
    subject     TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_time ON audit_log (at);

-- Workspaces that installed the app (OAuth v2). Tokens are stored encrypted.
CREATE TABLE installations (
    team_id         TEXT PRIMARY KEY,
    enterprise_id   TEXT,
    team_name       TEXT,
    bot_token_enc   TEXT NOT NULL,
    bot_user_id     TEXT,
    bot_id          TEXT,
    scopes          TEXT,
    installed_by    TEXT,
    installed_at    BIGINT NOT NULL,
    revoked_at      BIGINT
);
