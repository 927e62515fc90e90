//! The audit log: who changed what, when. Never holds answers.

use crate::domain::ids::ProgramId;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{on_pool, on_tx, to_ms, Millis, Store, StoreResult, StoreTx};

/// One entry as the admin API shows it (`GET /api/v1/audit`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Grows with every entry; the paging cursor is built from it.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `config`, `admin:<who>`, `member:<U…>` or `system`.
    pub actor: String,
    pub action: String,
    #[schema(value_type = Option<String>)]
    pub program_id: Option<ProgramId>,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    #[sqlx(try_from = "Millis")]
    at: DateTime<Utc>,
    actor: String,
    action: String,
    program_id: Option<ProgramId>,
    subject: Option<String>,
    detail: String,
}

impl StoreTx {
    pub async fn audit(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        program_id: Option<&ProgramId>,
        subject: Option<&str>,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        let detail = detail.to_string();
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, program_id, subject, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(to_ms(at))
            .bind(actor)
            .bind(action)
            .bind(program_id)
            .bind(subject)
            .bind(&detail)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// One page of the log, newest first: at most `limit` entries older than the entry
    /// `before` (an id, from the previous page), of one program when `program_id` is given.
    /// Ids only grow, so a page never shifts when entries are added meanwhile (keyset paging,
    /// not offsets).
    pub async fn audit_page(
        &self,
        program_id: Option<&ProgramId>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, at, actor, action, program_id, subject, detail FROM audit_log
                 WHERE ($1 IS NULL OR program_id = $1) AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(program_id)
            .bind(before)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Newest first.
    pub async fn audit_entries(
        &self,
        program_id: Option<&ProgramId>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, at, actor, action, program_id, subject, detail FROM audit_log
                 WHERE ($1 IS NULL OR program_id = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(program_id)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            program_id: r.program_id,
            subject: r.subject,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}
