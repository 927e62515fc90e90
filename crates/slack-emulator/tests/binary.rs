//! The `slack-emulator` binary on its own: starts, prints where it listens, serves the Web API
//! with the token it was given, and refuses bad arguments with a sentence and exit code 2.

mod common;
use common::json_of;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_serves_the_web_api_with_the_given_token() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slack-emulator"))
        .args([
            "--port",
            "0",
            "--token",
            "xoxb-bin",
            "--user",
            "U0ALICE:Europe/London",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slack-emulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let web_api = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("web_api = ").map(String::from))
        .expect("the binary prints its web_api address");
    // Keep reading what else it prints: a closed pipe would make its next line fail.
    std::thread::spawn(move || lines.for_each(drop));
    slack_emulator::install_crypto_provider();
    let http = reqwest::Client::new();
    let ok = json_of(
        http.post(format!("{web_api}/users.info"))
            .bearer_auth("xoxb-bin")
            .form(&[("user", "U0ALICE")]),
    )
    .await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["user"]["tz"], "Europe/London");
    let refused = json_of(
        http.post(format!("{web_api}/auth.test"))
            .bearer_auth("xoxb-other"),
    )
    .await;
    assert_eq!(refused["error"], "invalid_auth");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bad_user_argument_is_refused_with_a_sentence() {
    let out = Command::new(env!("CARGO_BIN_EXE_slack-emulator"))
        .args(["--port", "0", "--user", "U0BOB:Mars/Olympus"])
        .output()
        .expect("run slack-emulator");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'Mars/Olympus' is not an IANA time zone"),
        "{err}"
    );
}

#[tokio::test]
async fn the_binary_reads_a_workspace_file_and_serves_the_control_api() {
    let dir = std::env::temp_dir().join(format!("emu-bin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("workspace.toml");
    std::fs::write(
        &file,
        r#"team_id = "T0FILE"
team_name = "From File"

[[users]]
id = "U0ADA"
real_name = "Ada Lovelace"
tz = "Europe/London"
email = "ada@example.com"

[[channels]]
id = "C0GENERAL"
name = "general"
members = ["U0ADA"]

[[usergroups]]
id = "S0TEAM"
members = ["U0ADA"]

[[apps]]
app_id = "A0FILE"
bot_user_id = "U0FILEBOT"
bot_id = "B0FILEBOT"
token = "xoxb-file"
scopes = ["chat:write"]
"#,
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_slack-emulator"))
        .args(["--port", "0", "--workspace"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slack-emulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let web_api = lines
        .find_map(|l| l.strip_prefix("web_api = ").map(String::from))
        .expect("web_api");
    let control = lines
        .find_map(|l| l.strip_prefix("control = ").map(String::from))
        .expect("the binary prints its control address");
    std::thread::spawn(move || lines.for_each(drop));
    slack_emulator::install_crypto_provider();
    let http = reqwest::Client::new();
    let posted = json_of(
        http.post(format!("{web_api}/chat.postMessage"))
            .bearer_auth("xoxb-file")
            .form(&[("channel", "#general"), ("text", "hi")]),
    )
    .await;
    assert_eq!(posted["channel"], "C0GENERAL", "{posted}");
    let auth = json_of(
        http.post(format!("{web_api}/auth.test"))
            .bearer_auth("xoxb-file"),
    )
    .await;
    assert_eq!(auth["team_id"], "T0FILE");
    let scoped = json_of(
        http.post(format!("{web_api}/users.info"))
            .bearer_auth("xoxb-file")
            .form(&[("user", "U0ADA")]),
    )
    .await;
    assert_eq!(scoped["error"], "missing_scope");
    let listed = json_of(http.get(format!("{control}/workspace"))).await;
    assert_eq!(listed["team_id"], "T0FILE");
    assert_eq!(listed["usergroups"][0]["id"], "S0TEAM");
    let _ = child.kill();
    let _ = child.wait();

    std::fs::write(&file, "[[users]]\nid = \"U0ADA\"\ntz = \"Nowhere/Land\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_slack-emulator"))
        .args(["--port", "0", "--workspace"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workspace.toml") && err.contains("Nowhere/Land"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
