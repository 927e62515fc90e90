//! `pulseloop demo` (issue 10, item 9), run as a newcomer would: the built binary, a folder,
//! three weeks. Exit code 0, and the folder holds the digest, a chart that decodes as PNG,
//! every Block Kit payload in order, and a transcript that tells the loop.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulseloop"));
    // The demo needs no Slack and no configuration: none of these may change what it does.
    for var in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DATABASE_URL",
        "PULSELOOP_CONFIG",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("demo")
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Every payload of messages/, parsed, in file-name order.
fn payloads(folder: &Path) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(folder.join("messages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(folder.join("messages").join(&name)).unwrap();
            let json: Value = serde_json::from_str(&text).expect("each payload is JSON");
            (name, json)
        })
        .collect()
}

fn of_kind<'a>(all: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|(_, p)| p["kind"] == kind)
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn the_demo_runs_the_whole_loop_and_leaves_a_folder_with_the_digest_and_its_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo-out");
    let started = std::time::Instant::now();
    let run = demo(&["--out", out.to_str().unwrap(), "--weeks", "3"]);
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(240),
        "the demo took {:?}",
        started.elapsed()
    );

    // The digest, readable and as JSON: three weeks of the program's sixteen members.
    let md = std::fs::read_to_string(out.join("digest.md")).unwrap();
    assert!(md.contains("Leadership Coaching Pilot"), "{md}");
    assert!(
        md.contains("![The digest's trend chart](chart.png)"),
        "{md}"
    );
    let digest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("digest.json")).unwrap()).unwrap();
    assert_eq!(digest["program"], "leadership-pilot");
    assert_eq!(digest["participation"]["asked"], 16, "{digest}");
    assert!(digest["headline"].as_str().is_some_and(|h| !h.is_empty()));
    // Scores drift upward: the last week's coaching value beats the first one's.
    let value = digest["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "coaching_value")
        .expect("coaching value is in the digest");
    let means: Vec<f64> = value["trend"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["mean"].as_f64())
        .collect();
    assert!(means.len() >= 3, "three weeks of means: {value}");
    assert!(
        means.last() > means.first(),
        "the trend rises over the weeks: {means:?}"
    );

    // The chart is the PNG the service uploaded: it decodes, with real dimensions.
    let png = std::fs::read(out.join("chart.png")).unwrap();
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .expect("chart.png is a valid PNG");
    assert!(image.width() > 0 && image.height() > 0);

    // Every payload the emulator received, in order, named by what it carries.
    let all = payloads(&out);
    let times: Vec<&str> = all
        .iter()
        .map(|(_, p)| p["received_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "messages/ is in the order received");
    assert!(
        all.iter().all(|(_, p)| p["ok"] == true),
        "Slack refused none"
    );
    let pulses = of_kind(&all, "pulse");
    assert!(
        pulses.len() >= 3 * 16,
        "a weekly pulse DM to each member each week"
    );
    assert!(pulses[0]["params"]["blocks"]
        .to_string()
        .contains("\"open_modal\""));
    let reminders = of_kind(&all, "reminder");
    assert!(!reminders.is_empty(), "late answerers were reminded");
    assert!(reminders
        .iter()
        .all(|r| r["params"]["thread_ts"].is_string()
            && r["params"]["text"]
                .as_str()
                .unwrap()
                .starts_with("Friendly reminder")));
    let wins = of_kind(&all, "win-shoutout");
    assert!(
        wins.iter().any(|w| w["params"]["channel"] == "C0SPONSOR1"
            && w["params"]["text"]
                .as_str()
                .unwrap()
                .contains("Ran my first skip-level 1:1s")),
        "the celebrated message was shouted out after its author's consent"
    );
    assert_eq!(of_kind(&all, "win-consent-ask").len(), 1);
    assert!(!of_kind(&all, "answered-update").is_empty());
    assert!(!of_kind(&all, "you-said-we-did").is_empty());
    let digests = of_kind(&all, "digest");
    assert_eq!(digests.len(), 3, "one digest a week");
    assert!(digests
        .iter()
        .all(|d| d["params"]["channel"] == "C0SPONSOR1" && d["params"]["blocks"].is_array()));
    assert_eq!(of_kind(&all, "digest-chart").len(), 3);

    // The transcript tells it, and is kept in the folder.
    let transcript = std::fs::read_to_string(out.join("transcript.txt")).unwrap();
    assert_eq!(transcript, stdout, "what was printed is what was kept");
    for needle in [
        "Weekly pulse DM",
        "answered the Weekly pulse",
        "↻ reminder →",
        "uses “Celebrate as a small win”",
        "★ #coaching-sponsors: Small win",
        "types /pulse action",
        "“You said, we did” DM to",
        "▣ weekly digest → #coaching-sponsors",
        "▣ chart uploaded",
        "transcript.txt",
    ] {
        assert!(
            transcript.contains(needle),
            "no “{needle}” in:\n{transcript}"
        );
    }
    assert!(out.join("config/programs/leadership-pilot.toml").is_file());
}

#[test]
fn the_demo_refuses_a_folder_it_cannot_use_with_a_sentence_and_exit_code_1() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();

    // A folder with someone's files in it: the demo starts from a fresh database.
    let run = demo(&["--out", tmp.path().to_str().unwrap(), "--weeks", "1"]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot use") && stderr.contains("is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "mine",
        "nothing of theirs was touched"
    );

    // A path that cannot be a folder (its parent is a file).
    let inside_a_file = tmp.path().join("notes.txt").join("demo");
    let run = demo(&["--out", inside_a_file.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot use") && stderr.contains("output folder"),
        "{stderr}"
    );
    assert!(!inside_a_file.exists());

    // Weeks out of range are refused by the argument parser.
    let run = demo(&["--weeks", "0"]);
    assert_eq!(run.status.code(), Some(2));
}
