-- `/pulse forget-me` (issue 10, item 4; docs/my-data.md).
--
-- A member who asked to be forgotten must not be added back by the next configuration sync
-- while the file still lists them, yet nothing may name them. Each row is a tombstone: a
-- keyed hash of the Slack user id (HMAC-SHA256 under a key derived from
-- PULSELOOP_ENCRYPTION_KEY; without that secret, SHA-256 of a fixed label and the id, which
-- anyone can recompute for a guessed id). The sync skips a file member whose tombstone is
-- here and warns the operator to remove them from the file.
CREATE TABLE forgotten_members (
    tombstone     TEXT PRIMARY KEY,     -- hex keyed hash of the Slack user id
    keyed         BOOLEAN NOT NULL,     -- true: HMAC under the server secret
    forgotten_at  BIGINT NOT NULL
);
