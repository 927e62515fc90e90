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
    let web_api = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("web_api = ").map(String::from))
        .expect("the binary prints its web_api address");
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
