-- Installing into any workspace with OAuth v2 (issue 10, item 5).

-- The `installations` table of the first migration is filled now: one row per workspace the
-- app was installed into through /slack/install. The bot token is never stored in clear:
-- bot_token_enc is hex(nonce || AES-256-GCM(token)) under a key derived from
-- PULSELOOP_ENCRYPTION_KEY (its own label), with the team id as associated data, so a sealed
-- token copied onto another team's row does not open. installed_by is the Slack user who
-- approved. A reinstall replaces the row and clears revoked_at; app_uninstalled /
-- tokens_revoked set it (with the reason), and nothing is sent with the token after that. The
-- workspace of SLACK_BOT_TOKEN (the "default installation") has no row.
ALTER TABLE installations ADD COLUMN app_id TEXT;
ALTER TABLE installations ADD COLUMN revoked_reason TEXT;

-- The nonces of OAuth states already used: a state is good once (a replayed callback URL is
-- refused). Rows are pruned when their state has expired anyway.
CREATE TABLE oauth_states (
    nonce       TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

-- Each outbox row belongs to a workspace: '' is the default installation (SLACK_BOT_TOKEN,
-- or the sandbox), which every row written before this change was for. The worker sends a row
-- with its workspace's token, and parks the rows of a revoked workspace.
ALTER TABLE outbox ADD COLUMN team_id TEXT NOT NULL DEFAULT '';
