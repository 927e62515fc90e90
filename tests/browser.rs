//! The sandbox page in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver by fantoccini, against the real app and its
//! Slack emulator on 127.0.0.1.
//!
//! Without chromedriver the tests SKIP loudly, except under `CI=true`, where that is a failure
//! (`.ci/run` installs it). `PULSELOOP_SANDBOX_SCREENSHOTS=docs/images` writes the README's
//! screenshots (sandbox-dm.png, sandbox-modal.png, sandbox-thread.png).

#[allow(dead_code, unused_imports)]
#[path = "api/helpers.rs"]
mod helpers;

use chrono::Duration;
use fantoccini::{Client, ClientBuilder, Locator};
use helpers::*;
use serde_json::{json, Value};
use slack_emulator::EmulatedUser;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const ADA: &str = "U0ADA";
const BEN: &str = "U0BEN";

/// A weekly pulse of four questions (two required scales, a choice, an optional comment) for
/// Ada in Berlin and Ben in New York.
const PROGRAM: &str = r#"id = "pilot"
name = "Leadership Pilot"
timezone = "Europe/Berlin"
start_date = "2027-01-04"
anonymity_threshold = 3
comment_threshold = 3
[[members]]
slack_id = "U0ADA"
role = "participant"
timezone = "Europe/Berlin"
[[members]]
slack_id = "U0BEN"
role = "participant"
timezone = "America/New_York"
[[surveys]]
id = "weekly"
name = "Weekly pulse"
cadence = "0 10 * * MON"
window_hours = 48
remind_after_hours = 24
anonymity = "anonymous"
[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching this week?"
low_label = "Not at all"
high_label = "Extremely"
[[surveys.questions]]
key = "confidence"
kind = "scale"
prompt = "How confident do you feel leading your team?"
[[surveys.questions]]
key = "focus"
kind = "choice"
prompt = "What did you work on?"
options = ["Feedback", "Delegation", "Strategy"]
[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything else?"
required = false
"#;

/// chromedriver on a free loopback port, stopped with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver and Chromium, or `None` (with a loud message) when they are missing outside CI.
/// Under `CI=true` a missing browser fails the test.
fn browser_or_skip(test: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let driver = find_program(&["chromedriver"]);
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    match driver {
        Some(driver) => Some((driver, chromium)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{test}: chromedriver is not installed, and CI=true: the browser tests must run in CI \
             (.ci/run installs Debian's chromium and chromium-driver)"
        ),
        None => {
            // Straight to stderr: the test harness would swallow eprintln! of a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: chromedriver is not installed (apt-get install -y chromium chromium-driver); \
                 the sandbox page was NOT tested in a browser"
            );
            None
        }
    }
}

async fn start_driver(driver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Owned by the guard at once, so a failure below still stops it.
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
            if r.status().is_success() {
                return driver;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not come up on {}", driver.url);
}

async fn open_browser(driver: &Driver, chromium: Option<&Path>) -> Client {
    let mut options = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=900,2400", "--hide-scrollbars", "--force-device-scale-factor=1"],
    });
    if let Some(chromium) = chromium {
        options["binary"] = json!(chromium.to_string_lossy());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The app, its emulator with named members, the sandbox connected to the bot, and the
/// Monday pulse sent.
async fn app_with_pulse() -> TestApp {
    let emulator = start_emulator().await;
    emulator.add_user(
        EmulatedUser::new(ADA, "Europe/Berlin")
            .named("Ada Lovelace")
            .handle("ada"),
    );
    emulator.add_user(
        EmulatedUser::new(BEN, "America/New_York")
            .named("Ben Okafor")
            .handle("ben"),
    );
    let app = TestAppBuilder::default()
        .emulator(emulator)
        .workers(1)
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await;
    app.slack_shares_clock();
    app.emulator.connect_bot(&app.base_url, SIGNING_SECRET);
    // 10:00 Monday in Berlin, then 10:00 Monday in New York.
    app.send_monday_pulse().await;
    // The app's own outbox worker may hold a claimed DM a moment longer than drain_outbox:
    // the clock moves on only once Ada's DM is recorded as sent, or its sent time (which the
    // reminder counts from) would be New York's 10:00.
    sent_recorded(&app, 1).await;
    app.run_at(monday_ten_berlin() + Duration::hours(6)).await;
    sent_recorded(&app, 2).await;
    settle(&app, "both pulses", |app| {
        app.dm_count(ADA) == 1 && app.dm_count(BEN) == 1
    })
    .await;
    app
}

/// Waits (30 s at most) until `n` deliveries are recorded as sent in the database.
async fn sent_recorded(app: &TestApp, n: i64) {
    for _ in 0..300 {
        if app
            .count("SELECT COUNT(*) FROM deliveries WHERE sent_at IS NOT NULL")
            .await
            >= n
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {n} deliveries recorded as sent");
}

/// Waits (30 s at most) until `done` holds for what the emulator has received.
async fn settle(app: &TestApp, what: &str, done: impl Fn(&TestApp) -> bool) {
    for _ in 0..300 {
        if done(app) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        app.emulator.messages()
    );
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

/// Polls `script` (returning a boolean) until it is true; fails with the page after 30 s.
async fn wait_until(c: &Client, script: &str, what: &str) {
    for _ in 0..300 {
        if js(c, script).await == json!(true) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = c.source().await.unwrap_or_default();
    panic!("timed out waiting for {what}; the page:\n{page}");
}

/// Writes a screenshot of `selector` when PULSELOOP_SANDBOX_SCREENSHOTS names a folder.
async fn screenshot(c: &Client, selector: &str, file: &str) {
    let Some(dir) = std::env::var_os("PULSELOOP_SANDBOX_SCREENSHOTS") else {
        return;
    };
    let element = c
        .find(Locator::Css(selector))
        .await
        .expect("element to shoot");
    let png = element.screenshot().await.expect("a screenshot");
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    std::fs::write(dir.join(file), png).expect("screenshot written");
}

fn member(id: &str) -> String {
    format!("[data-member=\"{id}\"]")
}

#[tokio::test]
async fn a_dm_renders_with_bold_emoji_and_the_time_in_the_members_zone() {
    let Some((driver, chromium)) = browser_or_skip("a_dm_renders_with_bold_emoji") else {
        return;
    };
    let app = app_with_pulse().await;
    let driver = start_driver(&driver).await;
    let c = open_browser(&driver, chromium.as_deref()).await;
    c.goto(&app.emulator.sandbox_url()).await.unwrap();

    let ada = member(ADA);
    let seen = js(
        &c,
        &format!(
            r#"const m = document.querySelector('{ada} .msgs .msg');
            return {{
              bold: [...m.querySelectorAll('.msg-body b')].map(b => b.textContent),
              lock: [...m.querySelectorAll('.emoji')].map(e => e.title + e.textContent),
              text: m.querySelector('.msg-body').innerText,
              time: m.querySelector('.msg-head time').textContent,
              author: m.querySelector('.author').textContent,
              ben: document.querySelector('{ben} .msgs .msg .msg-head time').textContent,
            }};"#,
            ben = member(BEN)
        ),
    )
    .await;
    let bold: Vec<String> = serde_json::from_value(seen["bold"].clone()).unwrap();
    assert!(
        bold.iter().any(|b| b.contains("Leadership Pilot")),
        "the program name is bold: {seen}"
    );
    let emoji = seen["lock"].to_string();
    assert!(
        emoji.contains(":lock:🔒"),
        "the :lock: shortcode is drawn as 🔒: {seen}"
    );
    let text = seen["text"].as_str().unwrap();
    for raw in ["*Leadership", ":lock:", "&amp;", "&lt;"] {
        assert!(!text.contains(raw), "{raw:?} is printed raw: {text}");
    }
    assert_eq!(seen["time"], "10:00 AM", "Ada's DM came at 10:00 in Berlin");
    assert_eq!(seen["ben"], "10:00 AM", "Ben's came at 10:00 in New York");
    assert_eq!(seen["author"], "Pulseloop");
    screenshot(&c, &ada, "sandbox-dm.png").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_click_updates_the_message_without_a_reload() {
    let Some((driver, chromium)) = browser_or_skip("a_click_updates_the_message") else {
        return;
    };
    let app = app_with_pulse().await;
    let driver = start_driver(&driver).await;
    let c = open_browser(&driver, chromium.as_deref()).await;
    c.goto(&app.emulator.sandbox_url()).await.unwrap();
    // A marker that a reload would wipe.
    js(&c, "window.__noReload = 'still here'; return true;").await;

    let ada = member(ADA);
    let before = js(
        &c,
        &format!("return document.querySelector('{ada} .msgs').innerText;"),
    )
    .await;
    assert!(!before.to_string().contains("(edited)"), "{before}");
    c.find(Locator::Css(&format!(
        "{ada} .msgs .actions form.click button"
    )))
    .await
    .expect("an answer button")
    .click()
    .await
    .unwrap();
    wait_until(
        &c,
        &format!("return !!document.querySelector('{ada} .msgs .edited');"),
        "the DM to be updated in place",
    )
    .await;
    let after = js(
        &c,
        &format!("return document.querySelector('{ada} .msgs').innerText;"),
    )
    .await;
    let after = after.as_str().unwrap();
    assert!(after.contains("(edited)"), "{after}");
    assert!(
        !after.contains("times)"),
        "not \"(edited 1 times)\": {after}"
    );
    assert_ne!(before.as_str().unwrap(), after, "the message changed");
    assert_eq!(
        js(&c, "return window.__noReload;").await,
        "still here",
        "the page was not reloaded"
    );
    // The update after a click goes through the click's response_url (chat.update only as
    // its fallback): either way, the DM was edited exactly once.
    let edits: u32 = app.emulator.dm_messages(ADA).iter().map(|m| m.edits).sum();
    assert_eq!(edits, 1, "the bot updated the DM once");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_modal_error_appears_next_to_its_field_and_the_choices_stay() {
    let Some((driver, chromium)) = browser_or_skip("a_modal_error_appears_next_to_its_field")
    else {
        return;
    };
    let app = app_with_pulse().await;
    let driver = start_driver(&driver).await;
    let c = open_browser(&driver, chromium.as_deref()).await;
    c.goto(&app.emulator.sandbox_url()).await.unwrap();
    js(&c, "window.__noReload = 1; return true;").await;

    let ada = member(ADA);
    // "Answer all (4 questions, …)" opens the modal through views.open.
    let open = js(
        &c,
        &format!(
            r#"const b = [...document.querySelectorAll('{ada} .msgs .actions button')]
                 .find(b => b.textContent.startsWith('Answer all'));
               b.click(); return !!b;"#
        ),
    )
    .await;
    assert_eq!(open, true, "the DM has an Answer all button");
    wait_until(
        &c,
        &format!("return !!document.querySelector('{ada} form.modal');"),
        "the modal",
    )
    .await;
    let modal = format!("{ada} form.modal");
    let shape = js(
        &c,
        &format!(
            r#"const m = document.querySelector('{modal}');
            return {{
              radios: m.querySelectorAll('input[type=radio]').length,
              selects: m.querySelectorAll('select').length,
              textareas: m.querySelectorAll('textarea').length,
              optional: [...m.querySelectorAll('.optional')].map(e => e.textContent),
              hints: [...m.querySelectorAll('.hint')].map(e => e.textContent),
              buttons: [...m.querySelectorAll('.modal-footer button')].map(e => e.textContent),
            }};"#
        ),
    )
    .await;
    assert!(
        shape["radios"].as_u64().unwrap() >= 10,
        "scales are radio buttons: {shape}"
    );
    assert_eq!(
        shape["selects"], 0,
        "no drop-downs for five options: {shape}"
    );
    assert_eq!(
        shape["textareas"], 1,
        "the comment is a multi-line input: {shape}"
    );
    assert_eq!(shape["optional"], json!(["(optional)"]), "{shape}");
    assert!(
        shape["hints"]
            .to_string()
            .contains("1 = Not at all, 5 = Extremely"),
        "the scale's hint: {shape}"
    );
    assert_eq!(shape["buttons"][0], "Cancel", "{shape}");

    // Answer the first question only, then submit: the second and third are required.
    c.find(Locator::Css(&format!(
        "{modal} .input:nth-of-type(1) input[type=radio][value=\"4\"]"
    )))
    .await
    .expect("the first scale's 4")
    .click()
    .await
    .unwrap();
    c.find(Locator::Css(&format!(
        "{modal} .modal-footer button.primary"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_until(
        &c,
        &format!("return !!document.querySelector('{modal} .field-error');"),
        "the error next to the field",
    )
    .await;
    let errors = js(
        &c,
        &format!(
            r#"return [...document.querySelectorAll('{modal} .has-error')].map(f => ({{
                 block: f.dataset.block,
                 label: f.querySelector('.label').textContent,
                 error: f.querySelector('.field-error').textContent,
               }}));"#
        ),
    )
    .await;
    let blocks: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["block"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocks,
        ["q:confidence", "q:focus"],
        "the required questions left open, not the answered one nor the optional comment: {errors}"
    );
    assert!(
        errors[0]["label"].as_str().unwrap().contains("confident"),
        "{errors}"
    );
    assert_eq!(errors[0]["error"], "Please choose an answer.", "{errors}");
    let kept = js(
        &c,
        &format!(
            "return document.querySelector('{modal} .input:nth-of-type(1) input[type=radio][value=\"4\"]').checked;"
        ),
    )
    .await;
    assert_eq!(kept, true, "the answer already chosen is kept");
    screenshot(&c, &format!("{ada} .modal-slot"), "sandbox-modal.png").await;
    assert_eq!(
        js(&c, "return window.__noReload;").await,
        1,
        "no page of raw JSON"
    );
    assert!(
        !js(&c, "return document.body.innerText;")
            .await
            .to_string()
            .contains("response_action"),
        "no raw JSON"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_reminder_is_drawn_in_the_thread_of_its_pulse_and_commands_answer_ephemerally() {
    let Some((driver, chromium)) = browser_or_skip("a_reminder_is_drawn_in_the_thread") else {
        return;
    };
    let app = app_with_pulse().await;
    // A day later, Tuesday 10:00 in Berlin: the reminder goes into the pulse's thread.
    app.run_at(monday_ten_berlin() + Duration::hours(24)).await;
    settle(&app, "the reminder", |app| {
        app.emulator
            .dm_messages(ADA)
            .iter()
            .any(|m| m.thread_ts.is_some())
    })
    .await;
    let driver = start_driver(&driver).await;
    let c = open_browser(&driver, chromium.as_deref()).await;
    c.goto(&app.emulator.sandbox_url()).await.unwrap();
    let ada = member(ADA);
    let thread = js(
        &c,
        &format!(
            r#"const top = [...document.querySelectorAll('{ada} .msgs > .msg')];
            return top.map(m => ({{
              ts: m.dataset.ts,
              replies: [...m.querySelectorAll('.thread .msg')].map(r => r.innerText),
              count: (m.querySelector('.thread-count') || {{}}).textContent,
            }}));"#
        ),
    )
    .await;
    let top = thread.as_array().unwrap();
    assert_eq!(
        top.len(),
        1,
        "the reminder is not a message of its own: {thread}"
    );
    assert_eq!(top[0]["count"], "1 reply", "{thread}");
    let reply = top[0]["replies"][0].as_str().unwrap();
    assert!(
        reply.contains("reminder"),
        "the reminder sits under the pulse it reminds of: {thread}"
    );
    assert!(
        reply.contains("Tue, Jan 5 at 10:00 AM"),
        "a reply on another day says which day, in Ada's zone: {thread}"
    );
    screenshot(&c, &ada, "sandbox-thread.png").await;

    // The composer: `/pulse help` goes to the bot signed; its answer is "Only visible to you".
    let input = c
        .find(Locator::Css(&format!(
            "{ada} form.composer input[name=text]"
        )))
        .await
        .unwrap();
    input.send_keys("/pulse help\n").await.unwrap();
    wait_until(
        &c,
        &format!("return !!document.querySelector('{ada} .msg.ephemeral .only-you');"),
        "the command's ephemeral answer",
    )
    .await;
    let reply = js(
        &c,
        &format!("return document.querySelector('{ada} .msg.ephemeral').innerText;"),
    )
    .await;
    assert!(reply.to_string().contains("Only visible to you"), "{reply}");
    assert!(
        !reply.to_string().contains("failed"),
        "the bot took the signed command: {reply}"
    );

    // A plain line is a DM from Ada to the bot, delivered as a signed message.im event.
    let input = c
        .find(Locator::Css(&format!(
            "{ada} form.composer input[name=text]"
        )))
        .await
        .unwrap();
    input.send_keys("thanks & bye <3\n").await.unwrap();
    wait_until(
        &c,
        &format!(
            r#"return [...document.querySelectorAll('{ada} .msgs > .msg')]
                 .some(m => m.querySelector('.author').textContent === 'Ada Lovelace'
                   && m.querySelector('.msg-body').textContent === 'thanks & bye <3');"#
        ),
        "Ada's own message in the DM, as typed",
    )
    .await;
    let stored = app.emulator.dm_messages(ADA);
    assert!(
        stored
            .iter()
            .any(|m| m.user == ADA && m.text == "thanks &amp; bye &lt;3"),
        "stored with Slack's escaping, as Slack sends it: {stored:#?}"
    );
    c.close().await.unwrap();
}
