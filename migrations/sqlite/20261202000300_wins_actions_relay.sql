-- Small wins, "you said, we did" and replies to anonymous comments (issue 8, items 3 and 4).

-- A win waiting for its author's consent: `/pulse win <text>` (the author typed it) or the
-- "Celebrate as a small win" shortcut (someone else picked the author's message). The token
-- is random and travels in the consent buttons; the row is deleted by the author's answer
-- (or by a decline), in the transaction that stores the win, so a win is stored once
-- however often the buttons are clicked. Nothing is posted before that answer.
CREATE TABLE win_requests (
    token        TEXT PRIMARY KEY,
    program_id   TEXT NOT NULL REFERENCES programs(id),
    member_id    BIGINT NOT NULL REFERENCES members(id),   -- the author, who must consent
    text         TEXT NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('command', 'shortcut')),
    created_at   BIGINT NOT NULL
);

-- Wins from surveys are shouted out when their round closes (an anonymous round's answers
-- are final then, and the post cannot be timed against one member's answer). Set when the
-- shoutouts were queued, so each win is shouted out once.
ALTER TABLE wins ADD COLUMN shoutout_queued_at BIGINT;

-- Actions: the period each refers to (the program's latest closed round when it was
-- recorded, NULL if none had closed) and how many members were told by DM.
ALTER TABLE actions ADD COLUMN round_id BIGINT REFERENCES rounds(id);
ALTER TABLE actions ADD COLUMN period_key TEXT;
ALTER TABLE actions ADD COLUMN notified_count BIGINT NOT NULL DEFAULT 0;

-- Replies to anonymous comments (docs/anonymity.md, "Replies to anonymous comments").
-- responses.reply_handle: a random handle, only on comments whose author allowed replies;
-- the digest's reply button carries it (not unique in the index: the seal copies rows
-- before deleting the originals; 128 random bits do not collide). The mailbox row is found
-- by HMAC(server key, handle) and holds the author's Slack id encrypted (AES-256-GCM) under
-- a key derived from the server key and the handle: a copy of the database alone can neither join a mailbox row to
-- its comment nor read whom it reaches. WITHOUT ROWID: rows are kept in lookup order (a
-- keyed hash), not in the order people answered.
ALTER TABLE responses ADD COLUMN reply_handle TEXT;
CREATE INDEX responses_by_reply_handle ON responses (reply_handle);
CREATE TABLE reply_mailboxes (
    lookup      TEXT PRIMARY KEY,       -- hex HMAC-SHA256(server key, handle)
    sealed      TEXT NOT NULL,          -- hex nonce || AES-256-GCM(author's Slack id, padded)
    created_at  BIGINT NOT NULL         -- the round's opening time, never the answer's
) WITHOUT ROWID;
