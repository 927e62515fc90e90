//! Mirroring programs-as-code into the database: programs, members, surveys, questions.
//! One transaction per program; every change is audited with actor `config`; members
//! removed from the file are deactivated, never deleted.

use crate::domain::ids::ProgramId;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

use crate::domain::state::MemberState;
use slack_facts::ids::UserId;

use super::{on_tx, to_ms, StoreResult, StoreTx};

/// A member as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredMember {
    pub slack_user_id: UserId,
    pub role: String,
    pub source: String,
    pub timezone_override: Option<String>,
    pub working_days: Option<String>,
}

/// A survey as the configuration wants it, with its questions in order.
#[derive(Debug, Clone)]
pub struct DesiredSurvey {
    pub id: String,
    pub definition: Value,
    pub questions: Vec<DesiredQuestion>,
}

#[derive(Debug, Clone)]
pub struct DesiredQuestion {
    pub metric_key: String,
    pub kind: String,
    pub prompt: String,
    pub definition: Value,
}

#[derive(Debug, Clone)]
pub struct DesiredProgram {
    pub id: ProgramId,
    pub name: String,
    pub timezone: String,
    pub start_date: String,
    pub settings: Value,
    pub members: Vec<DesiredMember>,
    pub surveys: Vec<DesiredSurvey>,
}

/// What a sync changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub program_changed: bool,
    pub members_added: usize,
    pub members_updated: usize,
    pub members_deactivated: usize,
    pub members_reactivated: usize,
    pub surveys_changed: usize,
}

impl SyncReport {
    /// One structured log line, a field per count.
    pub fn log(&self, program: &ProgramId, message: &'static str) {
        tracing::info!(
            program = %program,
            program_changed = self.program_changed,
            members_added = self.members_added,
            members_updated = self.members_updated,
            members_deactivated = self.members_deactivated,
            members_reactivated = self.members_reactivated,
            surveys_changed = self.surveys_changed,
            "{message}"
        );
    }
}

#[derive(sqlx::FromRow)]
struct ExistingMember {
    slack_user_id: UserId,
    role: String,
    source: String,
    timezone_override: Option<String>,
    working_days: Option<String>,
    state: MemberState,
}

/// A value bound to a statement (one SQL text serves both backends).
#[derive(Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
}

/// An audit entry for a configuration change (actor `config`).
struct Audit<'a> {
    action: &'a str,
    subject: &'a str,
    detail: &'a Value,
}

impl StoreTx {
    pub async fn sync_program(
        &mut self,
        p: &DesiredProgram,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncReport> {
        let mut report = SyncReport {
            program_changed: self.sync_program_row(p, now).await?,
            ..SyncReport::default()
        };
        self.sync_members(p, now, &mut report).await?;
        self.sync_surveys(p, now, &mut report).await?;
        Ok(report)
    }

    /// Runs one write statement.
    async fn write(&mut self, sql: &'static str, args: &[Arg<'_>]) -> StoreResult<u64> {
        Ok(on_tx!(self, |c| {
            let mut q = sqlx::query(sql);
            for arg in args {
                q = match *arg {
                    Arg::Text(v) => q.bind(v),
                    Arg::OptText(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                };
            }
            q.execute(c).await?.rows_affected()
        }))
    }

    async fn config_audit(
        &mut self,
        now: DateTime<Utc>,
        program_id: &ProgramId,
        a: Audit<'_>,
    ) -> StoreResult<()> {
        self.audit(
            now,
            "config",
            a.action,
            Some(program_id),
            Some(a.subject),
            a.detail,
        )
        .await
    }

    /// The shape of every configuration change: one write, then its audit entry. The caller
    /// counts it in the report.
    async fn change(
        &mut self,
        now: DateTime<Utc>,
        program_id: &ProgramId,
        sql: &'static str,
        args: &[Arg<'_>],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        self.write(sql, args).await?;
        self.config_audit(now, program_id, audit).await
    }

    /// The `programs` row; true if it was created or changed.
    async fn sync_program_row(
        &mut self,
        p: &DesiredProgram,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let settings = p.settings.to_string();
        let existing: Option<(String, String, String, String)> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT name, timezone, start_date, settings FROM programs WHERE id = $1",
            )
            .bind(&p.id)
            .fetch_optional(c)
            .await?
        });
        let wanted = (
            p.name.clone(),
            p.timezone.clone(),
            p.start_date.clone(),
            settings.clone(),
        );
        if existing.as_ref() == Some(&wanted) {
            return Ok(false);
        }
        let action = if existing.is_some() {
            "program.updated"
        } else {
            "program.created"
        };
        self.change(
            now,
            &p.id,
            "INSERT INTO programs (id, name, timezone, start_date, settings, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone,
                start_date = excluded.start_date, settings = excluded.settings,
                active = TRUE, updated_at = excluded.updated_at",
            &[
                Arg::Text(p.id.as_str()),
                Arg::Text(&p.name),
                Arg::Text(&p.timezone),
                Arg::Text(&p.start_date),
                Arg::Text(&settings),
                Arg::Int(to_ms(now)),
            ],
            Audit {
                action,
                subject: p.id.as_str(),
                detail: &json!({ "name": p.name, "timezone": p.timezone }),
            },
        )
        .await?;
        Ok(true)
    }

    /// Members: add the new, update the changed, reactivate the returning, deactivate the
    /// removed (never delete).
    async fn sync_members(
        &mut self,
        p: &DesiredProgram,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> StoreResult<()> {
        let rows: Vec<ExistingMember> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT slack_user_id, role, source, timezone_override, working_days, state
                 FROM members WHERE program_id = $1",
            )
            .bind(&p.id)
            .fetch_all(c)
            .await?
        });
        let existing: HashMap<UserId, ExistingMember> = rows
            .into_iter()
            .map(|m| (m.slack_user_id.clone(), m))
            .collect();
        let mut desired: BTreeMap<&str, &DesiredMember> = BTreeMap::new();
        for m in &p.members {
            // The file wins over a user group when both name someone.
            desired.entry(m.slack_user_id.as_str()).or_insert(m);
        }
        for m in desired.values() {
            match existing.get(&m.slack_user_id) {
                None => self.add_member(p, m, now, report).await?,
                Some(old) => self.update_member(p, old, m, now, report).await?,
            }
        }
        for (id, old) in &existing {
            if !desired.contains_key(id.as_str()) && old.state != MemberState::Deactivated {
                self.change(
                    now,
                    &p.id,
                    "UPDATE members SET state = 'deactivated', updated_at = $1
                     WHERE program_id = $2 AND slack_user_id = $3",
                    &[
                        Arg::Int(to_ms(now)),
                        Arg::Text(p.id.as_str()),
                        Arg::Text(id.as_str()),
                    ],
                    Audit {
                        action: "member.deactivated",
                        subject: id.as_str(),
                        detail: &json!({ "reason": "removed from the configuration" }),
                    },
                )
                .await?;
                report.members_deactivated += 1;
            }
        }
        Ok(())
    }

    async fn add_member(
        &mut self,
        p: &DesiredProgram,
        m: &DesiredMember,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> StoreResult<()> {
        self.change(
            now,
            &p.id,
            "INSERT INTO members (program_id, slack_user_id, role, source, timezone_override,
                working_days, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7)",
            &[
                Arg::Text(p.id.as_str()),
                Arg::Text(m.slack_user_id.as_str()),
                Arg::Text(&m.role),
                Arg::Text(&m.source),
                Arg::OptText(m.timezone_override.as_deref()),
                Arg::OptText(m.working_days.as_deref()),
                Arg::Int(to_ms(now)),
            ],
            Audit {
                action: "member.added",
                subject: m.slack_user_id.as_str(),
                detail: &json!({ "role": m.role, "source": m.source }),
            },
        )
        .await?;
        report.members_added += 1;
        Ok(())
    }

    /// One write for a changed or returning member; one audit entry for each of the two.
    async fn update_member(
        &mut self,
        p: &DesiredProgram,
        old: &ExistingMember,
        m: &DesiredMember,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> StoreResult<()> {
        let changed = old.role != m.role
            || old.source != m.source
            || old.timezone_override != m.timezone_override
            || old.working_days != m.working_days;
        let reactivate = old.state == MemberState::Deactivated;
        if !changed && !reactivate {
            return Ok(());
        }
        self.write(
            "UPDATE members SET role = $1, source = $2, timezone_override = $3,
                working_days = $4, updated_at = $5,
                state = CASE WHEN state = 'deactivated' THEN 'active' ELSE state END
             WHERE program_id = $6 AND slack_user_id = $7",
            &[
                Arg::Text(&m.role),
                Arg::Text(&m.source),
                Arg::OptText(m.timezone_override.as_deref()),
                Arg::OptText(m.working_days.as_deref()),
                Arg::Int(to_ms(now)),
                Arg::Text(p.id.as_str()),
                Arg::Text(m.slack_user_id.as_str()),
            ],
        )
        .await?;
        if reactivate {
            report.members_reactivated += 1;
            let detail = json!({});
            let audit = Audit {
                action: "member.reactivated",
                subject: m.slack_user_id.as_str(),
                detail: &detail,
            };
            self.config_audit(now, &p.id, audit).await?;
        }
        if changed {
            report.members_updated += 1;
            let detail = json!({ "role": m.role, "timezone": m.timezone_override, "working_days": m.working_days });
            let audit = Audit {
                action: "member.updated",
                subject: m.slack_user_id.as_str(),
                detail: &detail,
            };
            self.config_audit(now, &p.id, audit).await?;
        }
        Ok(())
    }

    /// Surveys: write the new and the changed (and their questions), retire the removed.
    async fn sync_surveys(
        &mut self,
        p: &DesiredProgram,
        now: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> StoreResult<()> {
        let at = to_ms(now);
        let old_surveys: Vec<(String, String, bool)> = on_tx!(self, |c| {
            sqlx::query_as("SELECT id, definition, active FROM surveys WHERE program_id = $1")
                .bind(&p.id)
                .fetch_all(c)
                .await?
        });
        for s in &p.surveys {
            let definition = s.definition.to_string();
            let old = old_surveys.iter().find(|(id, _, _)| id == &s.id);
            if old.map(|(_, d, a)| (d.as_str(), *a)) == Some((definition.as_str(), true)) {
                continue;
            }
            let action = if old.is_some() {
                "survey.updated"
            } else {
                "survey.created"
            };
            self.change(
                now,
                &p.id,
                "INSERT INTO surveys (program_id, id, definition, active, created_at, updated_at)
                 VALUES ($1, $2, $3, TRUE, $4, $4)
                 ON CONFLICT (program_id, id) DO UPDATE SET definition = excluded.definition,
                    active = TRUE, updated_at = excluded.updated_at",
                &[
                    Arg::Text(p.id.as_str()),
                    Arg::Text(&s.id),
                    Arg::Text(&definition),
                    Arg::Int(at),
                ],
                Audit {
                    action,
                    subject: &s.id,
                    detail: &s.definition,
                },
            )
            .await?;
            report.surveys_changed += 1;
            self.sync_questions(&p.id, s, at).await?;
        }
        for (id, _, active) in &old_surveys {
            if *active && !p.surveys.iter().any(|s| &s.id == id) {
                self.change(
                    now,
                    &p.id,
                    "UPDATE surveys SET active = FALSE, updated_at = $1 WHERE program_id = $2 AND id = $3",
                    &[Arg::Int(at), Arg::Text(p.id.as_str()), Arg::Text(id)],
                    Audit {
                        action: "survey.retired",
                        subject: id,
                        detail: &json!({}),
                    },
                )
                .await?;
                report.surveys_changed += 1;
            }
        }
        Ok(())
    }

    /// Questions are keyed by metric key, so rewording keeps the trend; a question dropped
    /// from the file is retired, its answers kept.
    async fn sync_questions(
        &mut self,
        program_id: &ProgramId,
        s: &DesiredSurvey,
        at: i64,
    ) -> StoreResult<()> {
        self.write(
            "UPDATE questions SET active = FALSE, updated_at = $1 WHERE program_id = $2 AND survey_id = $3",
            &[Arg::Int(at), Arg::Text(program_id.as_str()), Arg::Text(&s.id)],
        )
        .await?;
        for (position, q) in s.questions.iter().enumerate() {
            let definition = q.definition.to_string();
            self.write(
                "INSERT INTO questions (program_id, survey_id, metric_key, position, kind, prompt, definition, active, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)
                 ON CONFLICT (program_id, survey_id, metric_key) DO UPDATE SET position = excluded.position,
                    kind = excluded.kind, prompt = excluded.prompt, definition = excluded.definition,
                    active = TRUE, updated_at = excluded.updated_at",
                &[
                    Arg::Text(program_id.as_str()),
                    Arg::Text(&s.id),
                    Arg::Text(&q.metric_key),
                    Arg::Int(position as i64),
                    Arg::Text(&q.kind),
                    Arg::Text(&q.prompt),
                    Arg::Text(&definition),
                    Arg::Int(at),
                ],
            )
            .await?;
        }
        Ok(())
    }
}

impl super::Store {
    /// Records `now` as the instant the service first ran against this database, unless one
    /// is recorded already (another replica, an earlier start); returns the recorded one.
    /// The planner opens no round for a firing before it (issue 11, item 1).
    pub async fn record_first_start(&self, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        let at: super::Millis = super::on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO service_facts (name, at) VALUES ('first_start', $1)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(to_ms(now))
            .execute(p)
            .await?;
            sqlx::query_scalar("SELECT at FROM service_facts WHERE name = 'first_start'")
                .fetch_one(p)
                .await?
        });
        Ok(at.into())
    }

    /// When the service first ran against this database (`None` before its first start).
    pub async fn first_start(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let at: Option<super::Millis> = super::on_pool!(self, |p| {
            sqlx::query_scalar("SELECT at FROM service_facts WHERE name = 'first_start'")
                .fetch_optional(p)
                .await?
        });
        Ok(at.map(Into::into))
    }
}
