//! Group commit: concurrent answers share a transaction, never get mixed up, and an answer
//! Slack got a 200 for is on disk, even when the process is killed right after the ack.

use crate::helpers::*;
use crate::pulses::{pilot_at, program, ONE_SCALE};
use chrono::Utc;
use serde_json::Value;
use slack_emulator::{EmulatedMessage, EmulatedUser, SignOptions, SlackPeer};
use std::collections::BTreeMap;

fn users(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("U0{prefix}{i:03}")).collect()
}

/// The answer button `value` (1–5) of a pulse DM: (block_id, action_id, value).
fn answer_button(dm: &EmulatedMessage, value: u8) -> (String, String, String) {
    let want = format!("answer:{value}");
    for block in dm.blocks.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            if e["action_id"]
                .as_str()
                .is_some_and(|a| a.starts_with(&want))
            {
                return (
                    block["block_id"].as_str().unwrap().to_string(),
                    e["action_id"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    panic!("no {want} button in {}", dm.blocks);
}

fn click_payload(peer: &SlackPeer, user: &str, dm: &EmulatedMessage, value: u8) -> Value {
    let (block, action, v) = answer_button(dm, value);
    peer.block_actions(user, &dm.channel, &dm.ts, &action, &block, &v)
}

/// What each member answered, as stored, by Slack user id.
async fn stored_by_user(url: &str) -> BTreeMap<String, f64> {
    rows(
        url,
        "SELECT m.slack_user_id AS user_id, r.value_number AS value
         FROM responses r JOIN deliveries d ON d.id = r.delivery_id
         JOIN members m ON m.id = d.member_id",
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r["user_id"].as_str().unwrap().to_string(),
            r["value"].as_f64().unwrap(),
        )
    })
    .collect()
}

/// Sends the Monday pulse to every member: the posts go out at the workspace's pace (10 a
/// second), so the manual clock moves a second at a time until the outbox is empty.
async fn send_to_all(app: &TestApp) {
    app.send_monday_pulse().await;
    for _ in 0..100 {
        if app
            .count("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight')")
            .await
            == 0
        {
            return;
        }
        app.advance(chrono::Duration::seconds(1));
        app.drain_outbox().await;
    }
    panic!("the pulse DMs did not all go out");
}

fn expected_value(i: usize) -> u8 {
    (i % 5) as u8 + 1
}

#[tokio::test]
async fn many_concurrent_answers_each_land_on_their_own_delivery() {
    let members = users(60, "GC");
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let app = pilot_at(&refs, "", ONE_SCALE, monday_ten_berlin()).await;
    send_to_all(&app).await;

    // Every member clicks at once, each a different value: they share commits.
    let clicks = members.iter().enumerate().map(|(i, user)| {
        let payload = click_payload(&app.peer, user, &app.first_dm(user), expected_value(i));
        let app = &app;
        async move { app.send_interaction(&payload).await.status().as_u16() }
    });
    let statuses = futures_join_all(clicks).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let stored = stored_by_user(&app.db.url).await;
    assert_eq!(stored.len(), members.len());
    for (i, user) in members.iter().enumerate() {
        assert_eq!(
            stored.get(user).copied(),
            Some(f64::from(expected_value(i))),
            "{user}'s answer"
        );
    }
    // One DM update per answer, each for its own delivery (the update names its own answer).
    app.assert_count(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update'",
        members.len() as i64,
    )
    .await;
    app.assert_count(
        "SELECT COUNT(*) FROM outbox o JOIN deliveries d ON d.id = o.delivery_id
         WHERE o.kind = 'answer_update' AND o.dedupe_key NOT LIKE '%' || d.id || '%'",
        0,
    )
    .await;
}

#[tokio::test]
async fn one_signed_click_arriving_many_times_at_once_is_stored_once() {
    let app = pilot_at(&["U0TWIN"], "", ONE_SCALE, monday_ten_berlin()).await;
    app.send_monday_pulse().await;
    let payload = click_payload(&app.peer, "U0TWIN", &app.first_dm("U0TWIN"), 3);
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    // The same bytes and timestamp: the same signature, as a captured request replayed.
    let sign = app.sign_now();
    let sends = (0..8).map(|_| {
        let (app, form, sign) = (&app, form.clone(), sign.clone());
        async move {
            app.post_signed("/slack/interactions", FORM, form.as_bytes(), sign)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM responses", 1),
        (
            "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update'",
            1,
        ),
        (
            "SELECT COALESCE(MAX(answer_revision), 0) FROM deliveries",
            1,
        ),
    ])
    .await;
}

#[tokio::test]
async fn racing_clicks_on_one_delivery_leave_one_update_showing_what_is_stored() {
    // On PostgreSQL an answer is one statement that applies only if the delivery's answers are
    // still the ones its DM update was drawn from; clicks racing on one delivery must fall
    // back to the step-by-step writes and still end with the update of the stored answer.
    let app = pilot_at(&["U0RACE"], "", ONE_SCALE, monday_ten_berlin()).await;
    app.send_monday_pulse().await;
    let dm = app.first_dm("U0RACE");
    let first = click_payload(&app.peer, "U0RACE", &dm, 1);
    assert_eq!(app.send_interaction(&first).await.status(), 200);
    let clicks = (2..=5).map(|value| {
        let payload = click_payload(&app.peer, "U0RACE", &dm, value);
        let app = &app;
        async move { app.send_interaction(&payload).await.status().as_u16() }
    });
    let statuses = futures_join_all(clicks).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Five different answers: five revisions, and only the latest update still pending.
    app.assert_count("SELECT MAX(answer_revision) FROM deliveries", 5)
        .await;
    assert_only_the_latest_update_pending(&app, "U0RACE", 5).await;
}

/// Only `user`'s latest DM update is still pending: the one keyed by answer revision
/// `revision`, showing the answer stored.
async fn assert_only_the_latest_update_pending(app: &TestApp, user: &str, revision: i64) {
    let stored = stored_by_user(&app.db.url).await[user];
    let pending = rows(
        &app.db.url,
        &format!(
            "SELECT o.dedupe_key, o.payload FROM outbox o JOIN deliveries d ON d.id = o.delivery_id
             JOIN members m ON m.id = d.member_id
             WHERE o.kind = 'answer_update' AND o.status = 'pending' AND m.slack_user_id = '{user}'"
        ),
    )
    .await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        pending[0]["dedupe_key"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":answer:{revision}")),
        "{pending:?}"
    );
    let shown = format!("*{} out of 5", stored as i64);
    assert!(
        pending[0]["payload"].as_str().unwrap().contains(&shown),
        "the update shows {shown}: {pending:?}"
    );
}

#[tokio::test]
async fn clicks_on_one_delivery_in_one_batch_are_written_one_after_the_other() {
    // The writer writes a batch's answers together in one trip, at most one per delivery
    // per trip: the others must go in later trips that see the first one's writes. A lock
    // held from outside makes the writer(s) wait, so the clicks queue up behind them and are
    // taken as one batch when it is released.
    let members = ["U0BATCH", "U0OTHER1", "U0OTHER2", "U0OTHER3", "U0OTHER4"];
    let app = pilot_at(&members, "", ONE_SCALE, monday_ten_berlin()).await;
    app.send_monday_pulse().await;
    let dm = app.first_dm("U0BATCH");
    let first = click_payload(&app.peer, "U0BATCH", &dm, 1);
    assert_eq!(app.send_interaction(&first).await.status(), 200);

    let mut holder = WriteLockHolder::take(&app.db.url).await;
    // Other members' clicks take the writers' next batches, which wait for the lock (SQLite
    // has one writer; PostgreSQL four, each given its own click a moment apart); the clicks
    // on one delivery, all drawn from the same revision, queue behind them together.
    let blockers = if app.db.url.starts_with("sqlite") {
        1
    } else {
        4
    };
    let app = &app;
    let blocked = async {
        let mut statuses = Vec::new();
        let sends = members[1..=blockers]
            .iter()
            .enumerate()
            .map(|(i, user)| async move {
                tokio::time::sleep(std::time::Duration::from_millis(100 * i as u64)).await;
                let payload = click_payload(&app.peer, user, &app.first_dm(user), 2);
                app.send_interaction(&payload).await.status().as_u16()
            });
        statuses.extend(futures_join_all(sends).await);
        statuses
    };
    let queued = async {
        tokio::time::sleep(std::time::Duration::from_millis(
            100 * blockers as u64 + 200,
        ))
        .await;
        let clicks = (2..=5).map(|value| {
            let payload = click_payload(&app.peer, "U0BATCH", &dm, value);
            async move { app.send_interaction(&payload).await.status().as_u16() }
        });
        futures_join_all(clicks).await
    };
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(
            100 * blockers as u64 + 600,
        ))
        .await;
        holder.release().await;
    };
    let (blocked, queued, ()) = tokio::join!(blocked, queued, release);
    assert!(blocked.iter().all(|s| *s == 200), "{blocked:?}");
    assert!(queued.iter().all(|s| *s == 200), "{queued:?}");

    // Five different answers: five revisions, one stored value, and only the latest update
    // pending, showing that value.
    app.assert_count(
        "SELECT MAX(answer_revision) FROM deliveries d JOIN members m ON m.id = d.member_id
         WHERE m.slack_user_id = 'U0BATCH'",
        5,
    )
    .await;
    assert_only_the_latest_update_pending(app, "U0BATCH", 5).await;
}

/// A lock, held from outside the app, that stops its writers: SQLite's write lock, or on
/// PostgreSQL an exclusive lock on the replay guard's table, which every batch of answers
/// writes first.
enum WriteLockHolder {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLockHolder {
    async fn take(url: &str) -> WriteLockHolder {
        use sqlx::Connection;
        if url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            WriteLockHolder::Sqlite(c)
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE seen_signatures IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            WriteLockHolder::Postgres(c)
        }
    }

    async fn release(&mut self) {
        match self {
            WriteLockHolder::Sqlite(c) => {
                sqlx::query("ROLLBACK").execute(c).await.unwrap();
            }
            WriteLockHolder::Postgres(c) => {
                sqlx::query("ROLLBACK").execute(c).await.unwrap();
            }
        }
    }
}

/// A counter's value on `/metrics` (0 when it was never incremented).
async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A click's answer takes the one-trip path on both databases (one statement on PostgreSQL,
/// five statements in one trip on SQLite), not the step-by-step writes.
#[tokio::test]
async fn a_click_is_written_by_the_one_trip_path() {
    let app = pilot_at(&["U0ONE"], "", ONE_SCALE, monday_ten_berlin()).await;
    app.send_monday_pulse().await;
    let dm = app.first_dm("U0ONE");
    let before = counter(&app, "answer_one_trip_total").await;
    for value in [2, 4] {
        let payload = click_payload(&app.peer, "U0ONE", &dm, value);
        assert_eq!(app.send_interaction(&payload).await.status(), 200);
    }
    // The metrics are the process's: other tests running beside this one may add to the
    // counter, never take from it.
    let taken = counter(&app, "answer_one_trip_total").await - before;
    assert!(taken >= 2.0, "both clicks took the one-trip path: {taken}");
    // Either way, the same result: the latest answer, two revisions, one pending update.
    assert_eq!(stored_by_user(&app.db.url).await["U0ONE"], 4.0);
    app.assert_counts(&[
        ("SELECT MAX(answer_revision) FROM deliveries", 2),
        (
            "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update' AND status = 'pending'",
            1,
        ),
    ])
    .await;

    // The same answer again (a new click, read with the answers stored): nothing changes,
    // no new revision, no second update.
    let again = click_payload(&app.peer, "U0ONE", &dm, 4);
    assert_eq!(app.send_interaction(&again).await.status(), 200);
    app.assert_counts(&[
        ("SELECT MAX(answer_revision) FROM deliveries", 2),
        (
            "SELECT COUNT(*) FROM outbox WHERE kind = 'answer_update' AND status = 'pending'",
            1,
        ),
    ])
    .await;
}

/// Runs the futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// The real binary, serving against `db_url`, the emulator and `config_dir`'s programs, with
/// its outbox and scheduler off (nothing but the answers touches the database).
pub(crate) struct Served {
    pub child: std::process::Child,
    pub base_url: String,
}

/// Starts the real binary with `settings` as its pulseloop.toml.
pub(crate) fn serve_binary_with(
    config_dir: &std::path::Path,
    db_url: &str,
    slack: &str,
    settings: &str,
) -> Served {
    use std::io::{BufRead, BufReader};
    std::fs::create_dir_all(config_dir.join("programs")).unwrap();
    std::fs::write(config_dir.join("pulseloop.toml"), settings).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pulseloop"))
        .arg("serve")
        .env("PULSELOOP_CONFIG", config_dir)
        .env("PULSELOOP_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", db_url)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_API_BASE_URL", slack)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("pulseloop is listening") {
            let v: Value = serde_json::from_str(&line).expect("JSON log line");
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        base_url: format!("http://{}", addr.expect("the binary is listening")),
    }
}

fn serve_binary(config_dir: &std::path::Path, db_url: &str, slack: &str) -> Served {
    serve_binary_with(
        config_dir,
        db_url,
        slack,
        "[outbox]\nworkers = 0\n[scheduler]\nenabled = false\n",
    )
}

#[tokio::test]
async fn an_acknowledged_answer_survives_a_sigkill_right_after_the_ack() {
    // Deliveries are made and sent in-process (a manual clock in January 2027), then the
    // real binary serves the clicks: its windows are open, as its clock is earlier.
    let members = users(30, "KL");
    let emulator = start_emulator().await;
    for m in &members {
        emulator.add_user(EmulatedUser::new(m, "Europe/Berlin"));
    }
    let list: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|m| (m.as_str(), "participant", "Europe/Berlin"))
        .collect();
    let toml = program(&list, "", ONE_SCALE);
    let app = TestAppBuilder::default()
        .emulator(emulator.clone())
        .program("pilot.toml", &toml)
        .spawn()
        .await;
    send_to_all(&app).await;
    let db = app.db.clone();
    let dms: Vec<EmulatedMessage> = members.iter().map(|m| app.first_dm(m)).collect();
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config_dir.path().join("programs")).unwrap();
    std::fs::write(config_dir.path().join("programs/pilot.toml"), &toml).unwrap();
    app.stop().await;

    let mut served = serve_binary(config_dir.path(), &db.url, &emulator.base_url());
    let peer = emulator.peer(&served.base_url, SIGNING_SECRET);
    let sign = SignOptions {
        timestamp: Some(Utc::now().timestamp()),
        ..SignOptions::default()
    };
    let clicks = members.iter().zip(&dms).enumerate().map(|(i, (user, dm))| {
        let payload = click_payload(&peer, user, dm, expected_value(i));
        let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let (peer, sign, user) = (&peer, sign.clone(), user.clone());
        async move {
            let status = peer
                .send_signed("/slack/interactions", FORM, form.into_bytes(), sign)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (user, status)
        }
    });
    let acked = futures_join_all(clicks).await;
    // Killed the moment the last ack arrived: no graceful shutdown, no later flush.
    served.child.kill().unwrap();
    served.child.wait().unwrap();

    let stored = stored_by_user(&db.url).await;
    let mut acked_count = 0;
    for (i, (user, status)) in acked.iter().enumerate() {
        if *status == 200 {
            acked_count += 1;
            assert_eq!(
                stored.get(user).copied(),
                Some(f64::from(expected_value(i))),
                "{user} was acknowledged, so their answer must be stored"
            );
        }
    }
    assert_eq!(
        acked_count,
        members.len(),
        "every click was acknowledged: {acked:?}"
    );
}
