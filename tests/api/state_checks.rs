//! Stored states are a closed set: the database itself refuses a value the code does not
//! know (migration 20261201000005: CHECK constraints on PostgreSQL; on SQLite rebuilt tables
//! with the checks, and triggers on the outbox). The SQLite rebuild keeps every row, its id
//! and every foreign key.

use crate::helpers::TestDb;
use pulseloop::storage::Store;
use sqlx::migrate::Migrator;
use std::path::Path;

const BEFORE_CHECKS: i64 = 20261201000005;

/// One row per table the migration changes, with the less common states the code writes:
/// a delivery `closed` by a seal, a `folded` role, a `cancelled` outbox row.
const ROWS: &[&str] = &[
    "INSERT INTO programs (id, name, timezone, start_date, settings, created_at, updated_at)
     VALUES ('p', 'P', 'UTC', '2027-01-01', '{}', 0, 0)",
    "INSERT INTO surveys (program_id, id, definition, created_at, updated_at)
     VALUES ('p', 's', '{}', 0, 0)",
    "INSERT INTO members (id, program_id, slack_user_id, role, source, state, created_at, updated_at)
     VALUES (7, 'p', 'U1', 'leader', 'file', 'paused', 0, 0),
            (8, 'p', 'U2', 'participant', 'usergroup', 'opted_out', 0, 0)",
    "INSERT INTO rounds (id, program_id, survey_id, period_key, origin, state, opened_at, closes_at, anonymity)
     VALUES (3, 'p', 's', 'k', 'send_now', 'closed', 0, 1, 'confidential')",
    "INSERT INTO deliveries (id, round_id, member_id, state, scheduled_at, local_time, timezone, closes_at)
     VALUES (11, 3, 7, 'closed', 0, 't', 'UTC', 1), (12, 3, 8, 'skipped', 0, 't', 'UTC', 1)",
    "INSERT INTO responses (id, round_id, delivery_id, metric_key, role, created_at, updated_at)
     VALUES (21, 3, 11, 'm', 'participant', 0, 0), (22, 3, NULL, 'n', 'folded', 0, 0)",
    "INSERT INTO wins (id, program_id, author_member_id, text, consent, source_key, created_at)
     VALUES (31, 'p', 7, 'w', 'named', 'k1', 0)",
    "INSERT INTO outbox (id, dedupe_key, method, payload, status, next_attempt_at, created_at, delivery_id)
     VALUES (41, 'k', 'chat.postMessage', '{}', 'cancelled', 0, 0, 11)",
];

/// Sums of ids per table: the same rows under the same ids.
const ID_SUMS: &str = "SELECT CAST((SELECT SUM(id) FROM members) + (SELECT SUM(id) FROM rounds)
    + (SELECT SUM(member_id + round_id) FROM deliveries) + (SELECT SUM(COALESCE(delivery_id, 0) + round_id) FROM responses)
    + (SELECT SUM(author_member_id) FROM wins) + (SELECT SUM(delivery_id) FROM outbox) AS BIGINT)";

/// Invalid values, one per checked column.
const INVALID: &[&str] = &[
    "UPDATE members SET state = 'sleeping'",
    "UPDATE members SET role = 'boss'",
    "UPDATE members SET source = 'rumour'",
    "UPDATE rounds SET state = 'sealed'",
    "UPDATE rounds SET origin = 'manual'",
    "UPDATE rounds SET anonymity = 'secret'",
    "UPDATE deliveries SET state = 'lost'",
    "UPDATE responses SET role = 'boss'",
    "UPDATE wins SET consent = 'maybe'",
    "UPDATE outbox SET status = 'done'",
    "INSERT INTO outbox (dedupe_key, method, payload, status, next_attempt_at, created_at)
     VALUES ('k2', 'chat.postMessage', '{}', 'queued', 0, 0)",
];

async fn run(url: &str, sql: &'static str) -> Result<u64, sqlx::Error> {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        let r = sqlx::query(sql)
            .execute(&pool)
            .await
            .map(|r| r.rows_affected());
        pool.close().await;
        r
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let r = sqlx::query(sql)
            .execute(&pool)
            .await
            .map(|r| r.rows_affected());
        pool.close().await;
        r
    }
}

async fn sum(url: &str) -> i64 {
    crate::helpers::count(url, ID_SUMS).await
}

/// Applies the migrations before the checks, on a database the store creates.
async fn migrate_before_checks(db: &TestDb) {
    let store = Store::connect(&db.url, 1).await.unwrap();
    let folder = if store.backend() == pulseloop::storage::Backend::Postgres {
        "migrations/postgres"
    } else {
        "migrations/sqlite"
    };
    store.close().await;
    let all = Migrator::new(Path::new(folder)).await.unwrap();
    let before: Vec<_> = all
        .iter()
        .filter(|m| m.version < BEFORE_CHECKS)
        .cloned()
        .collect();
    let migrator = Migrator::with_migrations(before);
    if db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        pool.close().await;
    }
}

#[tokio::test]
async fn the_state_checks_keep_every_row_id_and_reference() {
    let db = TestDb::new().await;
    migrate_before_checks(&db).await;
    for sql in ROWS {
        run(&db.url, sql).await.expect(sql);
    }
    let before = sum(&db.url).await;

    let store = Store::connect(&db.url, 2).await.unwrap();
    store
        .migrate()
        .await
        .expect("the checks apply to existing data");
    store.close().await;

    assert_eq!(sum(&db.url).await, before);
    assert_eq!(
        crate::helpers::count(
            &db.url,
            "SELECT COUNT(*) FROM deliveries WHERE state = 'closed'"
        )
        .await,
        1
    );
    if !db.url.starts_with("postgres") {
        assert_eq!(
            crate::helpers::count(&db.url, "SELECT COUNT(*) FROM pragma_foreign_key_check").await,
            0,
            "every reference still points at a row"
        );
        // References still name the rebuilt tables: a delivery of an unknown member is refused.
        let pool = sqlx::SqlitePool::connect_with(
            db.url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .foreign_keys(true),
        )
        .await
        .unwrap();
        let orphan = sqlx::query(
            "INSERT INTO deliveries (round_id, member_id, state, scheduled_at, local_time, timezone, closes_at)
             VALUES (3, 999, 'scheduled', 0, 't', 'UTC', 1)",
        )
        .execute(&pool)
        .await;
        assert!(orphan.is_err(), "the foreign key to members holds");
        pool.close().await;
    }
}

#[tokio::test]
async fn the_database_refuses_an_unknown_state() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url, 1).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    for sql in ROWS {
        run(&db.url, sql).await.expect(sql);
    }
    for sql in INVALID {
        let refused = run(&db.url, sql).await;
        let err = refused.expect_err(sql).to_string();
        assert!(err.to_lowercase().contains("check"), "{sql}: {err}");
    }
    // Valid values still pass.
    run(
        &db.url,
        "UPDATE deliveries SET state = 'expired' WHERE id = 12",
    )
    .await
    .unwrap();
    // Every status the code writes passes both outbox triggers (they spell the list out as
    // comparisons: a misspelt one would refuse a real status).
    for sql in [
        "UPDATE outbox SET status = 'in_flight'",
        "UPDATE outbox SET status = 'sent'",
        "UPDATE outbox SET status = 'failed'",
        "UPDATE outbox SET status = 'cancelled'",
        "UPDATE outbox SET status = 'pending'",
        // Each row of a multi-row insert fires the insert trigger (`cancelled` is in ROWS).
        "INSERT INTO outbox (dedupe_key, method, payload, status, next_attempt_at, created_at)
         VALUES ('k3', 'm', '{}', 'pending', 0, 0), ('k4', 'm', '{}', 'in_flight', 0, 0),
                ('k5', 'm', '{}', 'sent', 0, 0), ('k6', 'm', '{}', 'failed', 0, 0)",
    ] {
        run(&db.url, sql).await.expect(sql);
    }
}
