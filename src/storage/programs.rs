//! Mirroring programs-as-code into the database: programs, members, surveys, questions.
//! One transaction per program; every change is audited with actor `config`; members
//! removed from the file are deactivated, never deleted.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

use super::{on_tx, to_ms, StoreResult, StoreTx};

/// A member as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredMember {
    pub slack_user_id: String,
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
    pub id: String,
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

#[derive(sqlx::FromRow)]
struct ExistingMember {
    slack_user_id: String,
    role: String,
    source: String,
    timezone_override: Option<String>,
    working_days: Option<String>,
    state: String,
}

impl StoreTx {
    pub async fn sync_program(
        &mut self,
        p: &DesiredProgram,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncReport> {
        let mut report = SyncReport::default();
        let at = to_ms(now);
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
        if existing.as_ref() != Some(&wanted) {
            report.program_changed = true;
            on_tx!(self, |c| {
                sqlx::query(
                    "INSERT INTO programs (id, name, timezone, start_date, settings, active, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone,
                        start_date = excluded.start_date, settings = excluded.settings,
                        active = TRUE, updated_at = excluded.updated_at",
                )
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.timezone)
                .bind(&p.start_date)
                .bind(&settings)
                .bind(at)
                .execute(c)
                .await?
                .rows_affected()
            });
            let action = if existing.is_some() {
                "program.updated"
            } else {
                "program.created"
            };
            self.audit(
                now,
                "config",
                action,
                Some(&p.id),
                Some(&p.id),
                &json!({ "name": p.name, "timezone": p.timezone }),
            )
            .await?;
        }

        // Members.
        let rows: Vec<ExistingMember> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT slack_user_id, role, source, timezone_override, working_days, state
                 FROM members WHERE program_id = $1",
            )
            .bind(&p.id)
            .fetch_all(c)
            .await?
        });
        let existing: HashMap<String, ExistingMember> = rows
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
                None => {
                    on_tx!(self, |c| {
                        sqlx::query(
                            "INSERT INTO members (program_id, slack_user_id, role, source, timezone_override,
                                working_days, state, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7)",
                        )
                        .bind(&p.id)
                        .bind(&m.slack_user_id)
                        .bind(&m.role)
                        .bind(&m.source)
                        .bind(&m.timezone_override)
                        .bind(&m.working_days)
                        .bind(at)
                        .execute(c)
                        .await?
                        .rows_affected()
                    });
                    report.members_added += 1;
                    self.audit(
                        now,
                        "config",
                        "member.added",
                        Some(&p.id),
                        Some(&m.slack_user_id),
                        &json!({ "role": m.role, "source": m.source }),
                    )
                    .await?;
                }
                Some(old) => {
                    let changed = old.role != m.role
                        || old.source != m.source
                        || old.timezone_override != m.timezone_override
                        || old.working_days != m.working_days;
                    let reactivate = old.state == "deactivated";
                    if changed || reactivate {
                        on_tx!(self, |c| {
                            sqlx::query(
                                "UPDATE members SET role = $1, source = $2, timezone_override = $3,
                                    working_days = $4, updated_at = $5,
                                    state = CASE WHEN state = 'deactivated' THEN 'active' ELSE state END
                                 WHERE program_id = $6 AND slack_user_id = $7",
                            )
                            .bind(&m.role)
                            .bind(&m.source)
                            .bind(&m.timezone_override)
                            .bind(&m.working_days)
                            .bind(at)
                            .bind(&p.id)
                            .bind(&m.slack_user_id)
                            .execute(c)
                            .await?
                            .rows_affected()
                        });
                        if reactivate {
                            report.members_reactivated += 1;
                            self.audit(
                                now,
                                "config",
                                "member.reactivated",
                                Some(&p.id),
                                Some(&m.slack_user_id),
                                &json!({}),
                            )
                            .await?;
                        }
                        if changed {
                            report.members_updated += 1;
                            self.audit(now, "config", "member.updated", Some(&p.id), Some(&m.slack_user_id),
                                &json!({ "role": m.role, "timezone": m.timezone_override, "working_days": m.working_days })).await?;
                        }
                    }
                }
            }
        }
        for (id, old) in &existing {
            if !desired.contains_key(id.as_str()) && old.state != "deactivated" {
                on_tx!(self, |c| {
                    sqlx::query(
                        "UPDATE members SET state = 'deactivated', updated_at = $1
                         WHERE program_id = $2 AND slack_user_id = $3",
                    )
                    .bind(at)
                    .bind(&p.id)
                    .bind(id)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
                report.members_deactivated += 1;
                self.audit(
                    now,
                    "config",
                    "member.deactivated",
                    Some(&p.id),
                    Some(id),
                    &json!({ "reason": "removed from the configuration" }),
                )
                .await?;
            }
        }

        // Surveys and questions.
        let old_surveys: Vec<(String, String, bool)> = on_tx!(self, |c| {
            sqlx::query_as("SELECT id, definition, active FROM surveys WHERE program_id = $1")
                .bind(&p.id)
                .fetch_all(c)
                .await?
        });
        for s in &p.surveys {
            let definition = s.definition.to_string();
            let old = old_surveys.iter().find(|(id, _, _)| id == &s.id);
            if old.map(|(_, d, a)| (d.as_str(), *a)) != Some((definition.as_str(), true)) {
                on_tx!(self, |c| {
                    sqlx::query(
                        "INSERT INTO surveys (program_id, id, definition, active, created_at, updated_at)
                         VALUES ($1, $2, $3, TRUE, $4, $4)
                         ON CONFLICT (program_id, id) DO UPDATE SET definition = excluded.definition,
                            active = TRUE, updated_at = excluded.updated_at",
                    )
                    .bind(&p.id)
                    .bind(&s.id)
                    .bind(&definition)
                    .bind(at)
                    .execute(c)
                    .await?
                    .rows_affected()
                });
                report.surveys_changed += 1;
                let action = if old.is_some() {
                    "survey.updated"
                } else {
                    "survey.created"
                };
                self.audit(
                    now,
                    "config",
                    action,
                    Some(&p.id),
                    Some(&s.id),
                    &s.definition,
                )
                .await?;
                self.sync_questions(&p.id, s, at).await?;
            }
        }
        for (id, _, active) in &old_surveys {
            if *active && !p.surveys.iter().any(|s| &s.id == id) {
                on_tx!(self, |c| {
                    sqlx::query("UPDATE surveys SET active = FALSE, updated_at = $1 WHERE program_id = $2 AND id = $3")
                        .bind(at)
                        .bind(&p.id)
                        .bind(id)
                        .execute(c)
                        .await?
                        .rows_affected()
                });
                report.surveys_changed += 1;
                self.audit(
                    now,
                    "config",
                    "survey.retired",
                    Some(&p.id),
                    Some(id),
                    &json!({}),
                )
                .await?;
            }
        }
        Ok(report)
    }

    /// Questions are keyed by metric key, so rewording keeps the trend; a question dropped
    /// from the file is retired, its answers kept.
    async fn sync_questions(
        &mut self,
        program_id: &str,
        s: &DesiredSurvey,
        at: i64,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE questions SET active = FALSE, updated_at = $1 WHERE program_id = $2 AND survey_id = $3")
                .bind(at)
                .bind(program_id)
                .bind(&s.id)
                .execute(c)
                .await?
                .rows_affected()
        });
        for (position, q) in s.questions.iter().enumerate() {
            let definition = q.definition.to_string();
            on_tx!(self, |c| {
                sqlx::query(
                    "INSERT INTO questions (program_id, survey_id, metric_key, position, kind, prompt, definition, active, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)
                     ON CONFLICT (program_id, survey_id, metric_key) DO UPDATE SET position = excluded.position,
                        kind = excluded.kind, prompt = excluded.prompt, definition = excluded.definition,
                        active = TRUE, updated_at = excluded.updated_at",
                )
                .bind(program_id)
                .bind(&s.id)
                .bind(&q.metric_key)
                .bind(position as i64)
                .bind(&q.kind)
                .bind(&q.prompt)
                .bind(&definition)
                .bind(at)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        Ok(())
    }
}
