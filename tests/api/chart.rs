//! The digest's trend chart goes to the sponsor channel through the outbox: Slack's three
//! upload steps reach the emulator in order, once per dedupe key, retried like other writes.

use crate::helpers::*;
use chrono::Duration;
use pulseloop::digest::chart::{render_trend_chart, ChartSeries, TrendChart};
use pulseloop::slack::outbound::upload::enqueue_chart_upload;
use pulseloop::storage::outbox::OutboxStatus;
use slack_emulator::{Fault, FaultKind};

const CHANNEL: &str = "C0SPONSOR1";
const KEY: &str = "digest:leadership-2027:2027-03-29:C0SPONSOR1:chart";

fn chart_png() -> Vec<u8> {
    let points = (0..8)
        .map(|i| (format!("week {}", i + 1), Some(3.0 + 0.1 * i as f64)))
        .collect();
    let chart = TrendChart::new(
        "Leadership Coaching 2027",
        vec![ChartSeries {
            label: "coaching_value".into(),
            points,
            ci95: Some((3.5, 4.1)),
        }],
    );
    render_trend_chart(&chart).expect("chart renders")
}

async fn enqueue(app: &TestApp, png: &[u8]) -> bool {
    let mut tx = app.store.begin().await.unwrap();
    let queued = enqueue_chart_upload(
        &mut tx,
        CHANNEL,
        "trend.png",
        "Trend, last 8 weeks",
        png.to_vec(),
        KEY,
        app.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    queued
}

/// The `files.*` calls the emulator received, in arrival order.
fn file_calls(app: &TestApp) -> Vec<String> {
    app.emulator
        .calls()
        .into_iter()
        .filter(|c| c.method.starts_with("files."))
        .map(|c| c.method)
        .collect()
}

#[tokio::test]
async fn the_chart_is_uploaded_in_three_steps_and_shared_to_the_channel_once() {
    let app = spawn_app().await;
    app.emulator.add_channel(CHANNEL, "sponsors", true);
    let png = chart_png();

    assert!(enqueue(&app, &png).await);
    assert!(
        !enqueue(&app, &png).await,
        "the same key queues nothing more"
    );
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed), (1, 0));

    assert_eq!(
        file_calls(&app),
        ["files.getUploadURLExternal", "files.completeUploadExternal"]
    );
    let ticket = &app.emulator.calls_to("files.getUploadURLExternal")[0];
    assert_eq!(ticket.params["filename"], "trend.png");
    assert_eq!(ticket.params["length"], png.len().to_string().as_str());
    let file_id = ticket.response["file_id"].as_str().unwrap().to_string();
    let completion = &app.emulator.calls_to("files.completeUploadExternal")[0];
    assert_eq!(completion.params["channel_id"], CHANNEL);
    assert_eq!(completion.params["files"][0]["id"], file_id.as_str());
    assert_eq!(completion.response["ok"], true);

    // The emulator holds the PNG (it completes only files whose bytes arrived: the upload
    // came between the two calls), shared to the channel, with its title.
    let files = app.emulator.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].id, file_id);
    assert_eq!(files[0].bytes, png);
    assert_eq!(&files[0].bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(files[0].shared_to, [CHANNEL]);
    assert_eq!(files[0].title.as_deref(), Some("Trend, last 8 weeks"));
    let shared: Vec<_> = app
        .emulator
        .messages()
        .into_iter()
        .filter(|m| m.channel == CHANNEL)
        .collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].files, std::slice::from_ref(&file_id));

    let row = app.store.outbox_row(KEY).await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(row.result.unwrap()["file_id"], file_id.as_str());

    // Nothing more goes out later.
    app.advance(Duration::minutes(5));
    assert_eq!(app.drain_outbox().await.claimed, 0);
    assert_eq!(app.emulator.files().len(), 1);
}

#[tokio::test]
async fn a_failed_completion_is_retried_and_the_file_shared_once() {
    let app = spawn_app().await;
    app.emulator.add_channel(CHANNEL, "sponsors", true);
    app.emulator.inject(Fault {
        method: Some("files.completeUploadExternal".into()),
        target: None,
        kind: FaultKind::Http(503),
        times: Some(1),
    });
    let png = chart_png();
    enqueue(&app, &png).await;

    let first = app.step().await;
    assert_eq!((first.retried, first.sent), (1, 0));
    let row = app.store.outbox_row(KEY).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));

    app.advance(Duration::seconds(30));
    assert_eq!(app.drain_outbox().await.sent, 1);
    assert_eq!(
        file_calls(&app),
        [
            "files.getUploadURLExternal",
            "files.completeUploadExternal",
            "files.getUploadURLExternal",
            "files.completeUploadExternal"
        ]
    );
    let shared: Vec<_> = app
        .emulator
        .files()
        .into_iter()
        .filter(|f| !f.shared_to.is_empty())
        .collect();
    assert_eq!(
        shared.len(),
        1,
        "shared once; the first upload was never completed"
    );
    assert_eq!(shared[0].bytes, png);
}

#[tokio::test]
async fn an_upload_slack_refuses_fails_for_good_with_its_reason() {
    let app = spawn_app().await;
    app.emulator.add_channel(CHANNEL, "sponsors", false);
    enqueue(&app, &chart_png()).await;

    assert_eq!(app.drain_outbox().await.failed, 1);
    let row = app.store.outbox_row(KEY).await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not_in_channel"),
        "{:?}",
        row.last_error
    );
}

#[tokio::test]
async fn a_digests_chart_is_rendered_and_uploaded_once_per_key() {
    use pulseloop::digest::chart::enqueue_digest_chart;
    use pulseloop::digest::service::{build, current_periods};
    use pulseloop::domain::ids::ProgramId;

    let app = crate::kpis::pilot_app().await;
    crate::report::fixture(&app).await;
    app.advance(Duration::days(36)); // Tuesday 2027-02-09: six weekly rounds behind.
    app.emulator.add_channel(CHANNEL, "sponsors", true);
    let program = app
        .state
        .catalog
        .program(&ProgramId::from("pilot"))
        .unwrap();
    let periods = current_periods(&program, app.now()).unwrap();
    let digest = build(&app.store, &program, &periods).await.unwrap();
    assert!(
        !digest.trends.is_empty(),
        "the fixture's metrics have trends"
    );

    for expected in [true, false] {
        let mut tx = app.store.begin().await.unwrap();
        let queued = enqueue_digest_chart(&mut tx, &digest, CHANNEL, KEY, app.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queued, expected, "queued once per key");
    }
    assert_eq!(app.drain_outbox().await.sent, 1);
    let files = app.emulator.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].shared_to, [CHANNEL]);
    assert!(
        files[0].filename.starts_with("pilot-"),
        "{}",
        files[0].filename
    );
    assert!(files[0].filename.ends_with(".png"));
    let png = &files[0].bytes;
    if let Ok(path) = std::env::var("PULSELOOP_WRITE_DIGEST_CHART") {
        std::fs::write(path, png).unwrap();
    }
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1200);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 600);
}
