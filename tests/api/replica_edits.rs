//! Admin edits reach every replica without a restart (docs/config-precedence.md,
//! "Replicas"): two app processes on one database; a cadence edit through process 1's admin
//! API changes what process 2 shows and schedules. On PostgreSQL by `NOTIFY`/`LISTEN`, with
//! no reload by hand; on SQLite (one process in production) by the reload path SIGHUP takes.

use crate::admin_config::{local_times, put_cadence, PROGRAM};
use crate::helpers::*;
use pulseloop::storage::Backend;
use serde_json::{json, Value};
use std::time::Duration;

async fn cadence_on(app: &TestApp) -> Value {
    let config: Value = app
        .admin_get("/api/v1/programs/pilot/config")
        .await
        .json()
        .await
        .unwrap();
    config["surveys"][0]["cadence"].clone()
}

#[tokio::test]
async fn an_admin_edit_on_one_replica_is_in_force_on_the_other_without_a_restart() {
    let first = crate::admin_config::pilot_app().await;
    let second = TestAppBuilder::sharing(&first.db, &first.emulator, &first.clock)
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await;
    assert_eq!(cadence_on(&second).await["cadence"], "0 10 * * MON");
    assert_eq!(
        local_times(&second, "U0MEMBER1").await,
        ["2027-01-04T10:00:00+01:00", "2027-01-11T10:00:00+01:00"]
    );

    if first.store.backend() == Backend::Postgres {
        // Both processes listen before the edit, so it reaches process 2 by its notification
        // (the 30 s comparison, the fallback for lost ones, would come too late for the wait
        // below).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while count(
            &first.db.url,
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN %pulseloop_config%'",
        )
        .await
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "both processes listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let r = put_cadence(
        &first,
        json!({ "cadence": "0 9 * * TUE", "every_weeks": 2 }),
    )
    .await;
    assert_eq!(r.status(), 200);

    if first.store.backend() == Backend::Postgres {
        // The other replica hears of it and reloads the program on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while cadence_on(&second).await["cadence"] != "0 9 * * TUE" {
            assert!(
                std::time::Instant::now() < deadline,
                "process 2 still schedules with the old cadence: {}",
                cadence_on(&second).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        // SQLite is one process in production; a second one takes the edit on its reload.
        pulseloop::pulse::sync::apply_config(&second.state.pulses)
            .await
            .expect("reload");
    }
    let cadence = cadence_on(&second).await;
    assert_eq!(cadence["every_weeks"], 2, "{cadence}");
    assert_eq!(
        cadence["described"],
        "Tuesdays 09:00, every 2 weeks, each member's local time"
    );
    // What process 2's scheduler plans follows the edit: Tuesday 09:00, not Monday 10:00.
    assert_eq!(
        local_times(&second, "U0MEMBER1").await,
        ["2027-01-05T09:00:00+01:00"]
    );
    // The edit holds on process 2 (it was not dropped as if the file had changed).
    first
        .assert_count("SELECT COUNT(*) FROM config_overrides", 1)
        .await;
    second.stop().await;
    first.stop().await;
}

/// A notification can be lost (the listening connection was down when it was sent). Each
/// replica also compares the stored edits every `scheduler.config_check_seconds`: an edit
/// stored without any notification (written straight to the table here) is found that way.
#[tokio::test]
async fn an_edit_whose_notification_was_lost_is_found_by_the_periodic_comparison() {
    let first = crate::admin_config::pilot_app().await;
    if first.store.backend() != Backend::Postgres {
        // SQLite: one process, nothing announced or compared; its own edits are in force at
        // once (tests/api/admin_config.rs).
        first.stop().await;
        return;
    }
    let second = TestAppBuilder::sharing(&first.db, &first.emulator, &first.clock)
        .program("pilot.toml", PROGRAM)
        .settings(|s| s.scheduler.config_check_seconds = 1)
        .spawn()
        .await;
    let r = put_cadence(
        &first,
        json!({ "cadence": "0 9 * * TUE", "every_weeks": 2 }),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Process 2 has put that edit in force (by its notification or a comparison) …
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cadence_on(&second).await["cadence"] != "0 9 * * TUE" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first edit arrives"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // … then the edit changes again behind everyone's back: no NOTIFY is sent.
    exec(
        &first.db.url,
        "UPDATE config_overrides SET value = '{\"cadence\":\"0 8 * * WED\",\"every_weeks\":1}'
         WHERE program_id = 'pilot' AND field = 'cadence'",
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cadence_on(&second).await["cadence"] != "0 8 * * WED" {
        assert!(
            std::time::Instant::now() < deadline,
            "process 2 never found the edit: {}",
            cadence_on(&second).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        local_times(&second, "U0MEMBER1").await,
        ["2027-01-06T08:00:00+01:00", "2027-01-13T08:00:00+01:00"]
    );
    second.stop().await;
    first.stop().await;
}
