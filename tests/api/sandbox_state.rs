//! The sandbox keeps its workspace across restarts (DMs, views, members' states, in
//! `<database>.sandbox.json` beside the SQLite file), and "reset sandbox"
//! (`POST /_control/reset`) empties both the workspace and pulseloop's database. Always on a
//! SQLite file of its own: the sandbox refuses PostgreSQL.

use crate::helpers::*;
use crate::pulses::{program, ONE_SCALE};
use pulseloop::clock::{ManualClock, SharedClock};
use pulseloop::config::Settings;
use pulseloop::slack::outbound::OutboxWorker;
use pulseloop::startup::{sandbox_state_file, Application};
use slack_emulator::Emulator;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Sandbox {
    base_url: String,
    emulator: Emulator,
    worker: OutboxWorker,
    db_url: String,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
}

/// `serve` without a bot token (the sandbox), on `dir`'s database and configuration.
async fn start(dir: &Path) -> Sandbox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config_dir = dir.join("config");
    std::fs::create_dir_all(config_dir.join("programs")).unwrap();
    std::fs::write(
        config_dir.join("programs/pilot.toml"),
        program(&[("U0SBA", "leader", "Europe/Berlin")], "", ONE_SCALE),
    )
    .unwrap();
    let db_url = format!("sqlite://{}", dir.join("data/pulseloop.db").display());
    let mut settings = Settings {
        config_dir,
        ..Settings::default()
    };
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.shutdown_grace_seconds = 5;
    settings.database.url = db_url.clone();
    settings.slack.bot_token = None;
    settings.admin.token = Some(ADMIN_TOKEN.to_string().into());
    settings.outbox.workers = 0;
    settings.scheduler.enabled = false;
    let clock: SharedClock = Arc::new(ManualClock::new(monday_ten_berlin()));
    let app = Application::build(settings, clock)
        .await
        .expect("the sandbox builds");
    let emulator = app.sandbox().expect("sandbox mode").clone();
    let worker = app.outbox_worker();
    let base_url = app.base_url();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stop_rx.await;
        })
        .await
    });
    Sandbox {
        base_url,
        emulator,
        worker,
        db_url,
        stop,
        handle,
    }
}

impl Sandbox {
    async fn send_now(&self) -> u16 {
        reqwest::Client::new()
            .post(format!(
                "{}/api/v1/programs/pilot/surveys/weekly/send-now",
                self.base_url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn drain(&self) {
        for _ in 0..20 {
            let step = self.worker.run_once().await.expect("outbox step");
            if step.claimed == 0 {
                break;
            }
        }
    }

    /// Stops it like SIGTERM: the emulator writes its state file on the way out.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().expect("stops cleanly");
    }
}

#[test]
fn the_state_file_sits_beside_the_sqlite_database() {
    assert_eq!(
        sandbox_state_file("sqlite://data/pulseloop.db?mode=rwc"),
        Some("data/pulseloop.sandbox.json".into())
    );
    assert_eq!(
        sandbox_state_file("sqlite:/tmp/x/p.db"),
        Some("/tmp/x/p.sandbox.json".into())
    );
    assert_eq!(sandbox_state_file("sqlite::memory:"), None);
    assert_eq!(sandbox_state_file("postgres://h/db"), None);
}

#[tokio::test]
async fn a_restart_keeps_the_dms_on_the_page_and_reset_empties_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    assert!(
        (200..300).contains(&first.send_now().await),
        "the first round opens"
    );
    first.drain().await;
    let dms = first.emulator.dm_messages("U0SBA");
    assert_eq!(dms.len(), 1, "the pulse DM was sent");
    // The sandbox's people have names, as in a real workspace, not "User U0…".
    let page = reqwest::get(first.emulator.sandbox_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Amara Okafor"), "the member is shown by name");
    assert!(!page.contains("User U0SBA"), "never as 'User <id>'");
    first.stop().await;
    assert!(dir.path().join("data/pulseloop.sandbox.json").exists());

    // After a restart the page still shows the DM the open round refers to.
    let second = start(dir.path()).await;
    assert_eq!(second.emulator.dm_messages("U0SBA"), dms);
    assert_eq!(second.send_now().await, 409, "the round is still open");
    assert_eq!(
        count(&second.db_url, "SELECT COUNT(*) FROM rounds").await,
        1
    );

    // Reset sandbox: the page's button posts here.
    let reset = reqwest::Client::new()
        .post(format!("{}_control/reset", second.emulator.sandbox_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200, "{:?}", reset.text().await);
    assert!(second.emulator.messages().is_empty());
    assert_eq!(
        count(&second.db_url, "SELECT COUNT(*) FROM rounds").await,
        0
    );
    assert_eq!(
        count(&second.db_url, "SELECT COUNT(*) FROM deliveries").await,
        0
    );
    assert_eq!(
        count(&second.db_url, "SELECT COUNT(*) FROM outbox").await,
        0
    );
    assert_eq!(
        count(&second.db_url, "SELECT COUNT(*) FROM programs").await,
        1,
        "the configuration is applied again"
    );
    assert_eq!(
        count(
            &second.db_url,
            "SELECT COUNT(*) FROM service_facts WHERE name = 'first_start'"
        )
        .await,
        1,
        "the reset records a new first start, or the scheduler would skip every firing"
    );
    assert!(
        (200..300).contains(&second.send_now().await),
        "send-now works again at once"
    );
    second.drain().await;
    assert_eq!(second.emulator.dm_messages("U0SBA").len(), 1);
    second.stop().await;

    let third = start(dir.path()).await;
    assert_eq!(
        third.emulator.dm_messages("U0SBA").len(),
        1,
        "only the DM sent after the reset"
    );
    third.stop().await;
}

#[tokio::test]
async fn pulseloop_and_outside_clients_have_separate_rate_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let outside = pulseloop::startup::SANDBOX_OUTSIDE_TOKEN;
    // Exhaust users.list (Tier 2, 20 a minute) with the outside client's token.
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let s = http
            .post(format!("{}/users.list", sandbox.emulator.base_url()))
            .bearer_auth(outside)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        statuses.push(s);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // pulseloop's own token is not the outside one, and its budget is untouched.
    let own = sandbox.emulator.config().bot_token;
    assert_ne!(own, outside);
    let s = http
        .post(format!("{}/users.list", sandbox.emulator.base_url()))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200);
    sandbox.stop().await;
}
