//! The Slack protocol strings and the outbox's `kind` (issue 7, item 4): every outbox row of a
//! pulse names what it is, storage finds rows by that kind, and rows from before the column
//! existed get theirs from their keys when the migration runs.

use crate::helpers::*;
use crate::pulses::{pilot_at, ONE_SCALE};
use chrono::Duration;
use pulseloop::slack::protocol::{MessageKey, OutboxKey, PulseBlockId};
use std::collections::BTreeSet;

/// The first DM to `user`: (channel, ts, block_id of its first actions block).
fn dm_of(app: &TestApp, user: &str) -> (String, String, String) {
    let m = app.first_dm(user);
    let block_id = m
        .blocks
        .as_array()
        .unwrap()
        .iter()
        // Slack gives every block a block_id; the pulse's own is on its actions block.
        .filter(|b| b["type"] == "actions")
        .find_map(|b| b["block_id"].as_str().map(str::to_string))
        .expect("an actions block");
    (m.channel, m.ts, block_id)
}

#[tokio::test]
async fn every_outbox_row_of_a_pulse_names_its_kind() {
    // Confidential, so the seal keeps the rows this test reads.
    let app = pilot_at(
        &["U0KA", "U0KB"],
        "anonymity = \"confidential\"",
        ONE_SCALE,
        default_now(),
    )
    .await;
    app.send_monday_pulse().await;

    // The DM's block id is the typed one, and it names the question.
    let (channel, ts, block_id) = dm_of(&app, "U0KA");
    let parsed: PulseBlockId = block_id.parse().expect("a pulse block id");
    assert_eq!(
        parsed.to_string(),
        format!("pulse:{}:coaching_value", parsed.delivery())
    );

    let click = app
        .peer
        .block_actions("U0KA", &channel, &ts, "answer:4", &block_id, "4");
    assert_eq!(app.send_interaction(&click).await.status(), 200);
    app.drain_outbox().await;
    app.advance(Duration::hours(24));
    assert_eq!(app.tick().await.reminded, 1, "U0KB did not answer");
    app.advance(Duration::hours(25));
    app.tick().await;
    // A click after the close: the ephemeral notice.
    let late = app
        .peer
        .block_actions("U0KA", &channel, &ts, "answer:5", &block_id, "5");
    assert_eq!(app.send_interaction(&late).await.status(), 200);

    let stored = rows(
        &app.db.url,
        "SELECT kind, dedupe_key, message_key, target_key FROM outbox ORDER BY id",
    )
    .await;
    let mut kinds = BTreeSet::new();
    for row in &stored {
        let key: OutboxKey = row["dedupe_key"]
            .as_str()
            .unwrap()
            .parse()
            .expect("a pulse row's key parses");
        assert_eq!(row["kind"].as_str(), Some(key.kind().as_str()), "{row:?}");
        for column in ["message_key", "target_key"] {
            if let Some(k) = row[column].as_str() {
                assert_eq!(
                    k.parse::<MessageKey>().unwrap(),
                    MessageKey::Delivery(key.delivery())
                );
            }
        }
        kinds.insert(row["kind"].as_str().unwrap().to_string());
    }
    let all: BTreeSet<String> = [
        "pulse",
        "reminder",
        "answer_update",
        "closed_update",
        "late_notice",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds, all);
}

/// The `kind` migration on a database that already holds outbox rows: each gets its kind
/// from its key, and rows that are no pulse's become `other`.
#[tokio::test]
async fn the_kind_migration_backfills_rows_from_their_keys() {
    let db = TestDb::new().await;
    let before_kind = 20261201000003;
    let keys = [
        ("delivery:7:post", "pulse"),
        ("delivery:7:remind", "reminder"),
        ("delivery:7:answer:1", "answer_update"),
        ("delivery:7:answer:12", "answer_update"),
        ("delivery:7:closed", "closed_update"),
        ("delivery:7:late:1799999999.000100", "late_notice"),
        ("k-orig", "other"),
    ];
    let insert = |key: &str| {
        format!(
            "INSERT INTO outbox (dedupe_key, method, payload, status, attempts, next_attempt_at, created_at)
             VALUES ('{key}', 'chat.postMessage', '{{}}', 'sent', 1, 0, 0)"
        )
    };
    let migrator = if db.url.starts_with("postgres") {
        sqlx::migrate!("migrations/postgres")
    } else {
        sqlx::migrate!("migrations/sqlite")
    };
    with_test_pool!(&db.url, |pool| {
        migrator.run_to(before_kind, &pool).await.unwrap();
        for (key, _) in keys {
            sqlx::query(sqlx::AssertSqlSafe(insert(key)))
                .execute(&pool)
                .await
                .unwrap();
        }
        migrator.run(&pool).await.unwrap();
    });
    let stored = rows(&db.url, "SELECT dedupe_key, kind FROM outbox ORDER BY id").await;
    let got: Vec<(&str, &str)> = stored
        .iter()
        .map(|r| {
            (
                r["dedupe_key"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, keys);
    // The backfill agrees with the keys' own parse.
    for (key, kind) in keys.iter().filter(|(_, k)| *k != "other") {
        assert_eq!(key.parse::<OutboxKey>().unwrap().kind().as_str(), *kind);
    }
}
