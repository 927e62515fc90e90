-- Run-time edits of program configuration (issue 10, item 3), made by program admins from
-- Slack (`/pulse admin`) or through the admin API. `config/programs/*.toml` still declares
-- programs; an edit here holds until the file's value for the same field changes
-- (docs/config-precedence.md). Every write and every drop is also in `audit_log`.

-- One edited field. `survey_id` is '' for a program-wide field (the sponsor channel, a
-- member's presence); `field` is `cadence`, `paused`, `sponsor_channels` or `member:<U…>`.
-- `value` is the edit (JSON text); `file_value` is what the file said for the field when the
-- edit was made: when a reload sees the file say something else, the file wins and the row
-- is deleted. `actor` is the admin's Slack user id, or `api`.
CREATE TABLE config_overrides (
    program_id  TEXT NOT NULL,
    survey_id   TEXT NOT NULL DEFAULT '',
    field       TEXT NOT NULL,
    value       TEXT NOT NULL,
    file_value  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    set_at      BIGINT NOT NULL,
    PRIMARY KEY (program_id, survey_id, field)
);
