//! Members: their Slack profile mirror and their own controls (pause, resume, opt out).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::ids::{MemberId, ProgramId};
use crate::domain::planning::{plan_member, MemberFacts, PlanMember};
use crate::domain::program::Program;
use crate::domain::state::{DeliveryState, MemberState};
use slack_facts::ids::UserId;

use super::{on_pool, on_tx, to_ms, OptMillis, Store, StoreResult, StoreTx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: MemberId,
    pub program_id: ProgramId,
    pub slack_user_id: UserId,
    pub role: String,
    pub source: String,
    pub timezone_override: Option<String>,
    pub slack_tz: Option<String>,
    pub working_days: Option<String>,
    pub state: MemberState,
    #[sqlx(try_from = "OptMillis")]
    pub paused_until: Option<DateTime<Utc>>,
    pub slack_deleted: bool,
    pub is_bot: bool,
    pub is_restricted: bool,
    pub status_text: Option<String>,
    pub status_emoji: Option<String>,
    #[sqlx(try_from = "OptMillis")]
    pub profile_refreshed_at: Option<DateTime<Utc>>,
    /// Why Slack could not tell us about this member (`user_not_found`), until it can again.
    pub slack_problem: Option<String>,
}

const COLUMNS: &str = "id, program_id, slack_user_id, role, source, timezone_override, slack_tz, \
    working_days, state, paused_until, slack_deleted, is_bot, is_restricted, status_text, \
    status_emoji, profile_refreshed_at, slack_problem";

/// A member Slack could not tell us about, for the operator (issue 11, item 7).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct MemberProblem {
    pub member: UserId,
    pub role: String,
    pub source: String,
    /// Slack's error, e.g. `user_not_found`.
    pub problem: String,
    /// When Slack last said so.
    #[sqlx(try_from = "OptMillis")]
    pub checked_at: Option<DateTime<Utc>>,
}

/// What users.info told us.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub tz: Option<String>,
    pub deleted: bool,
    pub is_bot: bool,
    pub is_restricted: bool,
    pub status_text: Option<String>,
    pub status_emoji: Option<String>,
}

impl MemberRow {
    /// Deleted users and bots are never messaged; opted-out and deactivated members neither.
    pub fn can_receive(&self) -> bool {
        !self.slack_deleted
            && !self.is_bot
            && matches!(self.state, MemberState::Active | MemberState::Paused)
    }

    /// Paused right now (a pause with an end date that has passed no longer counts).
    pub fn is_paused(&self, now: DateTime<Utc>) -> bool {
        self.state == MemberState::Paused && self.paused_until.is_none_or(|until| until > now)
    }
}

/// The members `program` can plan for: not deleted, not bots, not opted out or deactivated.
pub fn plan_members(program: &Program, rows: &[MemberRow]) -> Vec<PlanMember> {
    rows.iter()
        .filter(|m| m.can_receive())
        .filter_map(|m| {
            plan_member(
                program,
                MemberFacts {
                    member_id: m.id,
                    slack_user_id: &m.slack_user_id,
                    role: &m.role,
                    timezone_override: m.timezone_override.as_deref(),
                    slack_tz: m.slack_tz.as_deref(),
                    working_days: m.working_days.as_deref(),
                },
            )
        })
        .collect()
}

impl Store {
    pub async fn members_of(&self, program_id: &ProgramId) -> StoreResult<Vec<MemberRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM members WHERE program_id = $1 ORDER BY slack_user_id"
            )))
            .bind(program_id)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn memberships_of(&self, slack_user_id: &UserId) -> StoreResult<Vec<MemberRow>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM members WHERE slack_user_id = $1 ORDER BY program_id"
            )))
            .bind(slack_user_id)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn member(&self, id: MemberId) -> StoreResult<MemberRow> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM members WHERE id = $1"
            )))
            .bind(id)
            .fetch_one(p)
            .await?
        }))
    }

    /// Slack users whose profile was never read or is older than `before`.
    pub async fn stale_profiles(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<UserId>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT slack_user_id FROM members
                 WHERE state <> 'deactivated' AND (profile_refreshed_at IS NULL OR profile_refreshed_at < $1)
                 GROUP BY slack_user_id ORDER BY MIN(COALESCE(profile_refreshed_at, 0)) LIMIT $2",
            )
            .bind(to_ms(before))
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    /// Applies users.info to every membership of that Slack user.
    pub async fn update_profile(
        &self,
        slack_user_id: &UserId,
        u: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.apply_profile_update(slack_user_id, u, now).await?;
        tx.commit().await
    }

    /// Marks a profile as read even when Slack could not tell us more (user_not_found), so
    /// the refresh does not hammer Slack; `deleted` makes sure they are never messaged, and
    /// `slack_problem` keeps the reason for the operator until Slack knows them again.
    pub async fn mark_profile_missing(
        &self,
        slack_user_id: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE members SET slack_deleted = TRUE, slack_problem = 'user_not_found', profile_refreshed_at = $1 WHERE slack_user_id = $2")
                .bind(to_ms(now))
                .bind(slack_user_id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

/// Why a delivery of a member who opted out is not sent.
const OPTED_OUT: &str = "opted out";

/// A member's own control over their pulses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberControl {
    Pause { until: Option<DateTime<Utc>> },
    Resume,
    OptOut,
}

impl StoreTx {
    /// Applies a control to every membership of `slack_user_id` that is not deactivated;
    /// returns how many memberships changed. Opting out also cancels pulses not yet sent:
    /// planned ones, and DMs already queued in the outbox (same transaction).
    pub async fn apply_member_control(
        &mut self,
        slack_user_id: &UserId,
        control: MemberControl,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let at = to_ms(now);
        let (state, until, action) = match control {
            MemberControl::Pause { until } => {
                (MemberState::Paused, until.map(to_ms), "member.paused")
            }
            MemberControl::Resume => (MemberState::Active, None, "member.resumed"),
            MemberControl::OptOut => (MemberState::OptedOut, None, "member.opted_out"),
        };
        let programs: Vec<(MemberId, ProgramId)> = on_tx!(self, |c| {
            sqlx::query_as(
                "UPDATE members SET state = $1, paused_until = $2, updated_at = $3
                 WHERE slack_user_id = $4 AND state <> 'deactivated'
                   AND (state <> 'opted_out' OR $1 = 'opted_out' OR $1 = 'active')
                 RETURNING id, program_id",
            )
            .bind(state)
            .bind(until)
            .bind(at)
            .bind(slack_user_id)
            .fetch_all(c)
            .await?
        });
        for (member_id, program_id) in &programs {
            self.audit(
                now,
                &format!("member:{slack_user_id}"),
                action,
                Some(program_id),
                Some(slack_user_id.as_str()),
                &json!({ "until": until }),
            )
            .await?;
            if control == MemberControl::OptOut {
                let which = "member_id = $4 AND state = 'scheduled'";
                self.mark_unsent(which, member_id.0, DeliveryState::Skipped, OPTED_OUT, now)
                    .await?;
                self.cancel_queued_dms(*member_id, now).await?;
            }
        }
        Ok(programs.len() as u64)
    }

    /// Cancels the member's DMs still waiting in the outbox (pulses and reminders a worker
    /// has not started on); a pulse's delivery becomes `skipped`, reason "opted out". Rows
    /// already in flight are left to finish: their call may have reached Slack.
    async fn cancel_queued_dms(
        &mut self,
        member_id: MemberId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let cancelled = self
            .cancel_queued_posts("member_id = $1", member_id.0, "cancelled: member opted out")
            .await?;
        for delivery_id in cancelled {
            let which = "id = $4 AND state = 'queued'";
            self.mark_unsent(which, delivery_id.0, DeliveryState::Skipped, OPTED_OUT, now)
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Members of a program Slack could not tell us about (not deactivated ones), by id.
    pub async fn member_problems(&self, program_id: &ProgramId) -> StoreResult<Vec<MemberProblem>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT slack_user_id AS member, role, source, slack_problem AS problem,
                        profile_refreshed_at AS checked_at
                 FROM members
                 WHERE program_id = $1 AND slack_problem IS NOT NULL AND state <> 'deactivated'
                 ORDER BY slack_user_id",
            )
            .bind(program_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Slack users with a problem in any program, last checked before `checked_before`:
    /// re-read on every reload (not twice in one).
    pub async fn users_with_problems(
        &self,
        checked_before: DateTime<Utc>,
    ) -> StoreResult<Vec<UserId>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT slack_user_id FROM members
                 WHERE slack_problem IS NOT NULL AND state <> 'deactivated'
                   AND (profile_refreshed_at IS NULL OR profile_refreshed_at < $1)
                 ORDER BY slack_user_id",
            )
            .bind(to_ms(checked_before))
            .fetch_all(p)
            .await?
        }))
    }
}
