//! Small wins: requests waiting for their author's consent, the wins themselves and their
//! shoutouts. A request is deleted by the author's answer in the transaction that stores the
//! win (`DELETE … RETURNING`), so two clicks store one win. An anonymous win keeps no author;
//! its shoutout row names only the win and the channel (docs/anonymity.md, "Small wins").

use chrono::{DateTime, Utc};

use super::{on_pool, on_tx, to_ms, Store, StoreResult, StoreTx};
use crate::domain::ids::{MemberId, ProgramId, RoundId};
use crate::domain::state::Consent;

/// How long a win waits for its author's answer before it is forgotten.
pub const WIN_REQUEST_DAYS: i64 = 7;

/// Where a waiting win came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinOrigin {
    /// `/pulse win <text>`: the author typed it.
    Command,
    /// The "Celebrate as a small win" shortcut on the author's message.
    Shortcut,
}

impl WinOrigin {
    fn as_str(self) -> &'static str {
        match self {
            WinOrigin::Command => "command",
            WinOrigin::Shortcut => "shortcut",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "shortcut" {
            WinOrigin::Shortcut
        } else {
            WinOrigin::Command
        }
    }
}

/// A win waiting for its author's consent.
#[derive(Debug, Clone)]
pub struct WinRequest {
    pub token: String,
    pub program_id: ProgramId,
    pub member_id: MemberId,
    pub text: String,
    pub origin: WinOrigin,
}

/// A win whose shoutouts are to be queued.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WinToShout {
    pub id: i64,
    pub program_id: ProgramId,
    pub text: String,
    pub consent: Consent,
    /// Only for a named win.
    pub author_slack_id: Option<String>,
}

impl StoreTx {
    /// Stores a request, after deleting the requests nobody answered within
    /// [`WIN_REQUEST_DAYS`] (and the DMs that asked for them): a request names its author
    /// beside the text, so it is not kept longer than the question is worth asking.
    pub async fn create_win_request(
        &mut self,
        request: &WinRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let expired = to_ms(now - chrono::Duration::days(WIN_REQUEST_DAYS));
        // With the asks goes their DM channel's shared rate budget (it names the author).
        on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM rate_budgets WHERE budget_key IN
                    (SELECT 'ch:' || o.channel_key FROM outbox o
                     JOIN win_requests r ON o.dedupe_key = 'winask:' || r.token
                     WHERE r.created_at < $1 AND o.channel_key IS NOT NULL)",
            )
            .bind(expired)
            .execute(c)
            .await?
            .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM outbox WHERE dedupe_key IN
                    (SELECT 'winask:' || token FROM win_requests WHERE created_at < $1)",
            )
            .bind(expired)
            .execute(c)
            .await?
            .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM win_requests WHERE created_at < $1")
                .bind(expired)
                .execute(c)
                .await?
                .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO win_requests (token, program_id, member_id, text, origin, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&request.token)
            .bind(&request.program_id)
            .bind(request.member_id)
            .bind(&request.text)
            .bind(request.origin.as_str())
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Takes (deletes and returns) the request `token` if it is still waiting and belongs to
    /// the member with Slack id `author`; `None` if it was answered already or is not theirs.
    pub async fn take_win_request(
        &mut self,
        token: &str,
        author: &str,
    ) -> StoreResult<Option<WinRequest>> {
        let row: Option<(String, ProgramId, MemberId, String, String)> = on_tx!(self, |c| {
            sqlx::query_as(
                "DELETE FROM win_requests
                 WHERE token = $1
                   AND member_id IN (SELECT id FROM members WHERE slack_user_id = $2)
                 RETURNING token, program_id, member_id, text, origin",
            )
            .bind(token)
            .bind(author)
            .fetch_optional(c)
            .await?
        });
        Ok(
            row.map(|(token, program_id, member_id, text, origin)| WinRequest {
                token,
                program_id,
                member_id,
                text,
                origin: WinOrigin::parse(&origin),
            }),
        )
    }

    /// Deletes the DM that asked a message's author for consent, once they answered: it
    /// named the author beside the win's text.
    pub async fn forget_sent_consent_ask(&mut self, dedupe_key: &str) -> StoreResult<()> {
        // The shared rate budget of the ask's DM channel is keyed by the author's channel
        // (PostgreSQL, `storage::rate_budgets`): it goes too, or it would tell who was asked
        // and when. Losing it only forgets one second of that DM's pacing.
        on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM rate_budgets WHERE budget_key IN
                    (SELECT 'ch:' || channel_key FROM outbox
                     WHERE dedupe_key = $1 AND channel_key IS NOT NULL)",
            )
            .bind(dedupe_key)
            .execute(c)
            .await?
            .rows_affected()
        });
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM outbox WHERE dedupe_key = $1")
                .bind(dedupe_key)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Stores a win given outside a survey. The author is kept only for a named win; the
    /// source key is a fresh random token. Returns the win's id.
    pub async fn insert_win(
        &mut self,
        program_id: &ProgramId,
        author: Option<MemberId>,
        text: &str,
        consent: Consent,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let source_key = format!("win:{}", uuid::Uuid::new_v4().simple());
        Ok(on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(program_id)
            .bind(author)
            .bind(text)
            .bind(consent)
            .bind(&source_key)
            .bind(to_ms(now))
            .fetch_one(c)
            .await?
        }))
    }

    /// Records that the win's shoutouts were queued (to `channels`, comma-separated).
    pub async fn mark_shoutout_queued(
        &mut self,
        win_id: i64,
        channels: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE wins SET shoutout_queued_at = $2, shoutout_channel = NULLIF($3, '')
                 WHERE id = $1",
            )
            .bind(win_id)
            .bind(to_ms(now))
            .bind(channels)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Wins typed into the survey of a closed round that are to be shared and were not yet
    /// shouted out.
    pub async fn survey_wins_to_shout(
        &mut self,
        round_id: RoundId,
    ) -> StoreResult<Vec<WinToShout>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT w.id, w.program_id, w.text, w.consent, m.slack_user_id AS author_slack_id
                 FROM wins w LEFT JOIN members m ON m.id = w.author_member_id AND w.consent = 'named'
                 WHERE w.round_id = $1 AND w.consent IN ('named', 'anonymous')
                   AND w.shoutout_queued_at IS NULL
                 ORDER BY w.id",
            )
            .bind(round_id)
            .fetch_all(c)
            .await?
        }))
    }
}

/// A stored win, as the digest and App Home read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WinRow {
    pub id: i64,
    pub text: String,
    pub consent: Consent,
    /// The author's Slack id, for named wins only.
    pub author_slack_id: Option<String>,
    pub shoutout_channel: Option<String>,
}

impl Store {
    /// The program's wins, newest first (private ones included: the caller decides).
    pub async fn wins_of_program(&self, program_id: &ProgramId) -> StoreResult<Vec<WinRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT w.id, w.text, w.consent, m.slack_user_id AS author_slack_id,
                        w.shoutout_channel
                 FROM wins w LEFT JOIN members m ON m.id = w.author_member_id AND w.consent = 'named'
                 WHERE w.program_id = $1
                 ORDER BY w.created_at DESC, w.id DESC",
            )
            .bind(program_id)
            .fetch_all(p)
            .await?
        }))
    }
}
