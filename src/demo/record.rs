//! What the demo leaves behind: the transcript (printed as it happens, and kept), each Block
//! Kit payload the emulator received, and at the end the folder's files.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DemoError;

/// The transcript: one line per event, under a header per day, in the program's zone.
pub struct Transcript {
    tz: Tz,
    day: Option<NaiveDate>,
    lines: Vec<String>,
    echo: bool,
}

impl Transcript {
    pub fn new(tz: Tz, echo: bool) -> Self {
        Self {
            tz,
            day: None,
            lines: Vec::new(),
            echo,
        }
    }

    /// A line without a time (headers, notes).
    pub fn note(&mut self, text: impl Into<String>) {
        self.push(text.into());
    }

    /// `HH:MM  text` at `at` in the program's zone, after the day's header when it is new.
    pub fn at(&mut self, at: DateTime<Utc>, text: impl AsRef<str>) {
        let local = at.with_timezone(&self.tz);
        let day = local.date_naive();
        if self.day != Some(day) {
            self.day = Some(day);
            self.push(String::new());
            self.push(format!("── {} ──", local.format("%A %-d %B %Y")));
        }
        let text = text.as_ref();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        self.push(format!("{}  {first}", local.format("%H:%M")));
        for more in lines {
            self.push(format!("       {more}"));
        }
    }

    fn push(&mut self, line: String) {
        if self.echo {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            // A closed pipe (`pulseloop demo | head`) must not stop the demo.
            let _ = writeln!(out, "{line}");
        }
        self.lines.push(line);
    }

    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

/// What a payload the emulator received was, in the demo's words (the file name says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pulse,
    Reminder,
    Answered,
    Closed,
    Modal,
    WinAsk,
    Win,
    Action,
    Digest,
    Chart,
    Ephemeral,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pulse => "pulse",
            Kind::Reminder => "reminder",
            Kind::Answered => "answered-update",
            Kind::Closed => "closed-update",
            Kind::Modal => "modal",
            Kind::WinAsk => "win-consent-ask",
            Kind::Win => "win-shoutout",
            Kind::Action => "you-said-we-did",
            Kind::Digest => "digest",
            Kind::Chart => "digest-chart",
            Kind::Ephemeral => "ephemeral",
            Kind::Other => "other",
        }
    }
}

/// One payload as the emulator received it.
#[derive(Debug, Clone)]
pub struct Payload {
    pub kind: Kind,
    pub method: String,
    pub at: DateTime<Utc>,
    /// The conversation it went to (a user id for DMs posted to users).
    pub channel: String,
    pub params: Value,
    pub ok: bool,
}

/// Creates the output folder (or takes an empty existing one) and checks it can be written,
/// before anything runs: a demo that cannot keep its results says so first.
pub fn prepare_folder(out: Option<&Path>, now: DateTime<Utc>) -> Result<PathBuf, DemoError> {
    let folder = match out {
        Some(path) => path.to_path_buf(),
        None => PathBuf::from(format!("pulseloop-demo-{}", now.format("%Y%m%d-%H%M%S"))),
    };
    let fail = |reason: String| DemoError::Folder {
        path: folder.clone(),
        reason,
    };
    if folder.exists() {
        if !folder.is_dir() {
            return Err(fail("it exists and is not a folder".into()));
        }
        let mut entries = std::fs::read_dir(&folder).map_err(|e| fail(e.to_string()))?;
        if entries.next().is_some() {
            return Err(fail(
                "it is not empty (the demo starts from a fresh database; choose a new folder)"
                    .into(),
            ));
        }
    }
    std::fs::create_dir_all(folder.join("messages")).map_err(|e| fail(e.to_string()))?;
    std::fs::create_dir_all(folder.join("config").join("programs"))
        .map_err(|e| fail(e.to_string()))?;
    let probe = folder.join(".write-check");
    std::fs::write(&probe, b"ok").map_err(|e| fail(e.to_string()))?;
    std::fs::remove_file(&probe).map_err(|e| fail(e.to_string()))?;
    folder.canonicalize().map_err(|e| fail(e.to_string()))
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), DemoError> {
    std::fs::write(path, bytes).map_err(|e| DemoError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `messages/0001-pulse-U0AMARA.json`, …: every payload in the order the emulator received it.
pub fn write_messages(folder: &Path, payloads: &[Payload]) -> Result<usize, DemoError> {
    let dir = folder.join("messages");
    for (i, p) in payloads.iter().enumerate() {
        let channel: String = p
            .channel
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let name = if channel.is_empty() {
            format!("{:04}-{}.json", i + 1, p.kind.as_str())
        } else {
            format!("{:04}-{}-{channel}.json", i + 1, p.kind.as_str())
        };
        let body = json!({
            "kind": p.kind.as_str(),
            "method": p.method,
            "received_at": p.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "ok": p.ok,
            "params": p.params,
        });
        let text = serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string());
        write(&dir.join(name), text)?;
    }
    Ok(payloads.len())
}

/// digest.md: the last digest as sponsors read it, the chart, and each week's headline.
pub fn digest_markdown(digests: &[Value], chart: Option<&str>) -> String {
    let Some(last) = digests.last() else {
        return String::new();
    };
    let blocks: Vec<Value> = last["blocks"].as_array().cloned().unwrap_or_default();
    let mut md = format!(
        "# {}: digest of {}\n\n",
        last["program_name"].as_str().unwrap_or(""),
        last["period"]["label"].as_str().unwrap_or("")
    );
    md.push_str("As posted to the sponsor channel (Block Kit rendered as text):\n\n");
    for line in crate::digest::message::to_text(&blocks).lines() {
        md.push_str(&format!("    {line}\n"));
    }
    if let Some(chart) = chart {
        md.push_str(&format!("\n![The digest's trend chart]({chart})\n"));
    }
    md.push_str("\n## Every week's digest\n\n| Period | Answered | Headline |\n|---|---|---|\n");
    for d in digests {
        md.push_str(&format!(
            "| {} | {} |  {} |\n",
            d["period"]["label"].as_str().unwrap_or(""),
            participation(d),
            d["headline"].as_str().unwrap_or("").replace('|', "\\|")
        ));
    }
    md
}

/// "12 of 16 (75 %)".
pub fn participation(digest: &Value) -> String {
    let p = &digest["participation"];
    format!(
        "{} of {} ({:.0} %)",
        p["answered"].as_i64().unwrap_or(0),
        p["asked"].as_i64().unwrap_or(0),
        p["rate"].as_f64().unwrap_or(0.0) * 100.0
    )
}
