//! The workspace's state across restarts: messages (with their attachments), views, members
//! (with their statuses) and open DMs, in one JSON file (`EmulatorConfig::state_file`).
//! Loaded at start; written by a background task at most every [`DEBOUNCE`] after a change,
//! and once more at shutdown, atomically (a temp file beside it, then a rename), so a crash
//! leaves the old file or the new one, never half of one. Triggers, response URLs, faults and
//! recorded calls are short-lived and not kept; files keep their names but not their bytes.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::model::{EmulatedMessage, EmulatedUser, EmulatedView};
use super::state::{Shared, World};

/// How often the writer looks for changes.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(250);

/// The file's version; a file of another version is set aside rather than misread.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    messages: Vec<EmulatedMessage>,
    /// `[channel, ts, attachments]`.
    attachments: Vec<(String, String, serde_json::Value)>,
    views: Vec<EmulatedView>,
    users: Vec<EmulatedUser>,
    baseline: Vec<EmulatedUser>,
    open_dms: BTreeSet<String>,
    counter: u64,
    last_ts_micros: i64,
}

fn snapshot(w: &World) -> Snapshot {
    let mut attachments: Vec<_> = w
        .attachments
        .iter()
        .map(|((c, t), a)| (c.clone(), t.clone(), a.clone()))
        .collect();
    attachments.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Snapshot {
        version: VERSION,
        messages: w.messages.clone(),
        attachments,
        views: w.views.clone(),
        users: w.directory.users.values().cloned().collect(),
        baseline: w.user_baseline.values().cloned().collect(),
        open_dms: w.directory.open_dms.clone(),
        counter: w.counter,
        last_ts_micros: w.last_ts_micros,
    }
}

/// Loads `path` into the world, if it exists. A file that cannot be read is renamed to
/// `<name>.broken` (and said so in the log) so the emulator still starts.
pub(crate) fn load(w: &mut World, path: &Path) {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "emulator: cannot read the state file; starting empty");
            return;
        }
    };
    let snapshot: Snapshot = match serde_json::from_slice::<Snapshot>(&text) {
        Ok(s) if s.version == VERSION => s,
        Ok(_) | Err(_) => {
            let aside = path.with_extension("json.broken");
            let _ = std::fs::rename(path, &aside);
            tracing::warn!(path = %path.display(), kept_as = %aside.display(), "emulator: the state file is not one this version reads; starting empty");
            return;
        }
    };
    w.messages = snapshot.messages;
    w.attachments = snapshot
        .attachments
        .into_iter()
        .map(|(c, t, a)| ((c, t), a))
        .collect();
    w.views = snapshot.views;
    for user in snapshot.users {
        w.directory.users.insert(user.id.clone(), user);
    }
    for user in snapshot.baseline {
        w.user_baseline.insert(user.id.clone(), user);
    }
    w.directory.open_dms = snapshot.open_dms;
    w.counter = w.counter.max(snapshot.counter);
    w.last_ts_micros = w.last_ts_micros.max(snapshot.last_ts_micros);
    tracing::info!(path = %path.display(), messages = w.messages.len(), views = w.views.len(), "emulator: workspace state loaded");
}

/// The state as the file would hold it.
fn encode(shared: &Shared) -> Vec<u8> {
    let snapshot = snapshot(&shared.world());
    serde_json::to_vec_pretty(&snapshot).unwrap_or_default()
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, flushed, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Keeps the file in step with the world.
pub(crate) struct Persister {
    path: PathBuf,
    shared: Arc<Shared>,
    last: std::sync::Mutex<Vec<u8>>,
}

impl Persister {
    pub fn new(path: PathBuf, shared: Arc<Shared>) -> Arc<Self> {
        let last = encode(&shared);
        Arc::new(Self {
            path,
            shared,
            last: std::sync::Mutex::new(last),
        })
    }

    /// Writes the state if it changed since the last write (or `force`).
    pub fn flush(&self, force: bool) -> std::io::Result<bool> {
        let bytes = encode(&self.shared);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *last == bytes {
            return Ok(false);
        }
        write_atomically(&self.path, &bytes)?;
        *last = bytes;
        Ok(true)
    }

    /// Checks for changes every [`DEBOUNCE`] until `stop`, then writes one last time.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(DEBOUNCE) => {}
                _ = stop.changed() => break,
            }
            if let Err(e) = self.flush(false) {
                tracing::warn!(path = %self.path.display(), error = %e, "emulator: cannot write the state file");
            }
        }
        if let Err(e) = self.flush(false) {
            tracing::warn!(path = %self.path.display(), error = %e, "emulator: cannot write the state file at shutdown");
        }
    }
}

/// Members seen in the state file keep their state when the same member is added again at
/// start (pulseloop seeds its members after the emulator is up).
pub(crate) fn keeps_state(baseline: &BTreeMap<String, EmulatedUser>, user: &EmulatedUser) -> bool {
    baseline.get(&user.id) == Some(user)
}
