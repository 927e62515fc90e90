//! Run-time edits of program configuration (`config_overrides`), made by program admins from
//! Slack or the admin API, and the writes those edits cause on the mirrored configuration
//! (survey definitions, program settings, members). The precedence rule (an edit holds until
//! the file's value for its field changes) is applied by `pulse::sync`; the table only keeps
//! the edit, who made it, when, and the file value it was made against.

use crate::domain::ids::ProgramId;
use chrono::{DateTime, Utc};
use serde_json::Value;
use slack_facts::ids::UserId;

use super::{on_pool, on_tx, to_ms, Millis, Store, StoreResult, StoreTx};

/// One stored run-time edit of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub program_id: ProgramId,
    /// `""` for a program-wide field.
    pub survey_id: String,
    /// `cadence`, `paused`, `sponsor_channels` or `member:<U…>`.
    pub field: String,
    pub value: Value,
    /// What the file said for this field when the edit was made.
    pub file_value: Value,
    pub actor: String,
    pub set_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OverrideRow {
    program_id: ProgramId,
    survey_id: String,
    field: String,
    value: String,
    file_value: String,
    actor: String,
    #[sqlx(try_from = "Millis")]
    set_at: DateTime<Utc>,
}

impl From<OverrideRow> for Override {
    fn from(r: OverrideRow) -> Self {
        Override {
            program_id: r.program_id,
            survey_id: r.survey_id,
            field: r.field,
            value: serde_json::from_str(&r.value).unwrap_or(Value::Null),
            file_value: serde_json::from_str(&r.file_value).unwrap_or(Value::Null),
            actor: r.actor,
            set_at: r.set_at,
        }
    }
}

const COLUMNS: &str = "program_id, survey_id, field, value, file_value, actor, set_at";

/// The PostgreSQL channel a committed run-time edit is announced on (payload: the program
/// id), so every replica reloads that program (docs/config-precedence.md, "Replicas").
pub const CONFIG_CHANNEL: &str = "pulseloop_config";

/// A replica's subscription to [`CONFIG_CHANNEL`], on a connection of its own (not one of
/// the pool's: it is held for as long as the process runs).
pub struct ConfigListener(sqlx::postgres::PgListener);

impl ConfigListener {
    /// The next announced program id; `None` when the connection was lost and made again
    /// (announcements made meanwhile are lost: compare [`Store::override_fingerprints`]).
    pub async fn recv(&mut self) -> StoreResult<Option<String>> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_string()))
    }
}

impl Store {
    /// Subscribes to announcements of run-time edits: `None` on SQLite (one process, nothing
    /// to announce to).
    pub async fn listen_config(&self) -> StoreResult<Option<ConfigListener>> {
        let super::Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*pool.connect_options()).clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
        listener.listen(CONFIG_CHANNEL).await?;
        Ok(Some(ConfigListener(listener)))
    }

    /// A fingerprint of each program's stored run-time edits (programs without any are
    /// absent): a replica that missed an announcement finds the programs whose edits changed
    /// by comparing these.
    pub async fn override_fingerprints(
        &self,
    ) -> StoreResult<std::collections::BTreeMap<ProgramId, u64>> {
        use std::hash::{Hash, Hasher};
        let rows: Vec<OverrideRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM config_overrides ORDER BY program_id, survey_id, field"
            )))
            .fetch_all(p)
            .await?
        });
        let mut hashers: std::collections::BTreeMap<
            ProgramId,
            std::collections::hash_map::DefaultHasher,
        > = Default::default();
        for r in rows {
            let h = hashers.entry(r.program_id.clone()).or_default();
            (&r.survey_id, &r.field, &r.value, &r.file_value, &r.actor).hash(h);
            r.set_at.timestamp_millis().hash(h);
        }
        Ok(hashers.into_iter().map(|(k, h)| (k, h.finish())).collect())
    }

    /// The run-time edits of one program, by survey then field.
    pub async fn overrides_of(&self, program_id: &ProgramId) -> StoreResult<Vec<Override>> {
        let rows: Vec<OverrideRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM config_overrides WHERE program_id = $1
                 ORDER BY survey_id, field"
            )))
            .bind(program_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(Override::from).collect())
    }
}

impl StoreTx {
    /// Announces that `program_id`'s configuration changed, delivered to every replica when
    /// this transaction commits (PostgreSQL `NOTIFY`); nothing on SQLite.
    pub async fn notify_config_changed(&mut self, program_id: &ProgramId) -> StoreResult<()> {
        if let super::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CONFIG_CHANNEL)
                .bind(program_id.as_str())
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// The edit of one field, if any (read inside the transaction that replaces it).
    pub async fn override_of(
        &mut self,
        program_id: &ProgramId,
        survey_id: &str,
        field: &str,
    ) -> StoreResult<Option<Override>> {
        let row: Option<OverrideRow> = on_tx!(self, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM config_overrides
                 WHERE program_id = $1 AND survey_id = $2 AND field = $3"
            )))
            .bind(program_id)
            .bind(survey_id)
            .bind(field)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(Override::from))
    }

    /// Stores an edit, replacing an earlier edit of the same field.
    pub async fn put_override(&mut self, o: &Override) -> StoreResult<()> {
        let value = o.value.to_string();
        let file_value = o.file_value.to_string();
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO config_overrides (program_id, survey_id, field, value, file_value, actor, set_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (program_id, survey_id, field) DO UPDATE SET value = excluded.value,
                    file_value = excluded.file_value, actor = excluded.actor, set_at = excluded.set_at",
            )
            .bind(&o.program_id)
            .bind(&o.survey_id)
            .bind(&o.field)
            .bind(&value)
            .bind(&file_value)
            .bind(&o.actor)
            .bind(to_ms(o.set_at))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Deletes an edit, but only the one that was read (same value and time): an edit made
    /// meanwhile by someone else is left alone. True when a row went.
    pub async fn delete_override(&mut self, o: &Override) -> StoreResult<bool> {
        let value = o.value.to_string();
        let n = on_tx!(self, |c| {
            sqlx::query(
                "DELETE FROM config_overrides
                 WHERE program_id = $1 AND survey_id = $2 AND field = $3 AND value = $4 AND set_at = $5",
            )
            .bind(&o.program_id)
            .bind(&o.survey_id)
            .bind(&o.field)
            .bind(&value)
            .bind(to_ms(o.set_at))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Writes a survey's mirrored definition (the edited cadence or paused state), so the next
    /// configuration sync finds nothing to change.
    pub async fn set_survey_definition(
        &mut self,
        program_id: &ProgramId,
        survey_id: &str,
        definition: &Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let definition = definition.to_string();
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE surveys SET definition = $1, updated_at = $2 WHERE program_id = $3 AND id = $4",
            )
            .bind(&definition)
            .bind(to_ms(now))
            .bind(program_id)
            .bind(survey_id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Writes a program's mirrored settings (the edited sponsor channel).
    pub async fn set_program_settings(
        &mut self,
        program_id: &ProgramId,
        settings: &Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let settings = settings.to_string();
        on_tx!(self, |c| {
            sqlx::query("UPDATE programs SET settings = $1, updated_at = $2 WHERE id = $3")
                .bind(&settings)
                .bind(to_ms(now))
                .bind(program_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Adds a member by an admin's edit, or brings back a deactivated one. Stored with source
    /// `file` (the column's CHECK allows `file` and `usergroup`): the member is one the
    /// configuration names, and that it is an admin's edit is kept in `config_overrides`.
    /// False when they are in the program already.
    pub async fn admin_add_member(
        &mut self,
        program_id: &ProgramId,
        user: &UserId,
        role: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO members (program_id, slack_user_id, role, source, state, created_at, updated_at)
                 VALUES ($1, $2, $3, 'file', 'active', $4, $4)
                 ON CONFLICT (program_id, slack_user_id) DO UPDATE SET state = 'active',
                    role = excluded.role, source = 'file', updated_at = excluded.updated_at
                 WHERE members.state = 'deactivated'",
            )
            .bind(program_id)
            .bind(user)
            .bind(role)
            .bind(to_ms(now))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Deactivates a member by an admin's edit (never deleted: their history stays). False
    /// when they were not an active member.
    pub async fn admin_remove_member(
        &mut self,
        program_id: &ProgramId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE members SET state = 'deactivated', updated_at = $1
                 WHERE program_id = $2 AND slack_user_id = $3 AND state <> 'deactivated'",
            )
            .bind(to_ms(now))
            .bind(program_id)
            .bind(user)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }
}
