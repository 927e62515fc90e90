-- Signed Slack requests already seen, so a captured click or command replayed within Slack's
-- 5-minute window is acknowledged and does nothing. Kept in the database (not in memory) so
-- every replica shares it. `request_ts` is the signed timestamp (ms); rows older than the
-- window are pruned. The signature is an HMAC of timestamp and body: nothing about who sent it.
CREATE TABLE seen_signatures (
    signature   TEXT PRIMARY KEY,
    request_ts  BIGINT NOT NULL
);
CREATE INDEX seen_signatures_by_ts ON seen_signatures (request_ts);

-- Slack workspaces this database has served with a real bot token (auth.test at start, or an
-- event's team_id). The sandbox refuses to start on a database listed here: it would mark
-- real members' DMs as sent to an emulator.
CREATE TABLE workspaces (
    team_id        TEXT PRIMARY KEY,
    source         TEXT NOT NULL,          -- auth.test | event
    first_seen_at  BIGINT NOT NULL
);
