//! Run-time edits reaching every replica without a restart (docs/config-precedence.md,
//! "Replicas"). An admin edit commits with `NOTIFY pulseloop_config, '<program id>'` in its
//! transaction ([`crate::storage::StoreTx::notify_config_changed`]); every replica `LISTEN`s
//! and reloads that program from its file and the stored edits ([`super::sync::reload_program`],
//! the path of SIGHUP for one program). A notification can be lost (the listening connection
//! dropped meanwhile), so each replica also compares a fingerprint of the stored edits every
//! `scheduler.config_check_seconds` (30) and reloads the programs whose edits changed.
//!
//! PostgreSQL only: SQLite is one process, which applies its own edits at once.

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

use super::Pulses;
use crate::domain::ids::ProgramId;
use crate::storage::overrides::ConfigListener;

/// Pause before listening again after the listening connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The stored edits as of now, to hand to [`follow_edits`]: taken before the configuration is
/// first applied, so an edit another replica makes between that and the first `LISTEN` is
/// found by the comparison made right after listening.
pub async fn edits_seen(pulses: &Pulses) -> BTreeMap<ProgramId, u64> {
    fingerprints(pulses).await.unwrap_or_default()
}

/// Follows the edits made on other replicas until `stop` turns true, from the edits `seen`
/// ([`edits_seen`]) when the configuration in force was applied. Returns at once on SQLite.
pub async fn follow_edits(
    pulses: Pulses,
    mut seen: BTreeMap<ProgramId, u64>,
    check_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = match pulses.store.listen_config().await {
        Ok(Some(listener)) => Some(listener),
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for configuration edits made on other replicas; comparing the stored edits periodically instead until it can");
            None
        }
    };
    // Edits made before this replica listened are found now.
    compare(&pulses, &mut seen).await;
    let mut check = tokio::time::interval(check_every);
    check.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = check.tick() => {
                if listener.is_none() {
                    listener = listen(&pulses).await;
                }
                compare(&pulses, &mut seen).await;
            }
            announced = next(&mut listener) => match announced {
                Ok(Some(program)) => {
                    reload(&pulses, &ProgramId(program), "announced").await;
                    // This edit is in force here now: no reload for it at the next compare.
                    if let Ok(now) = fingerprints(&pulses).await {
                        seen = now;
                    }
                }
                Ok(None) => {
                    tracing::warn!("the connection listening for configuration edits was lost and made again; comparing the stored edits now");
                    compare(&pulses, &mut seen).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for configuration edits failed; trying again, and comparing the stored edits periodically meanwhile");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                    listener = listen(&pulses).await;
                    compare(&pulses, &mut seen).await;
                }
            },
        }
    }
}

async fn listen(pulses: &Pulses) -> Option<ConfigListener> {
    match pulses.store.listen_config().await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for configuration edits yet");
            None
        }
    }
}

/// The next announcement, or never when not listening.
async fn next(
    listener: &mut Option<ConfigListener>,
) -> crate::storage::StoreResult<Option<String>> {
    match listener {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

async fn fingerprints(pulses: &Pulses) -> crate::storage::StoreResult<BTreeMap<ProgramId, u64>> {
    pulses.store.override_fingerprints().await
}

/// Reloads the programs whose stored edits differ from `seen` (added, changed or gone).
async fn compare(pulses: &Pulses, seen: &mut BTreeMap<ProgramId, u64>) {
    let now = match fingerprints(pulses).await {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stored configuration edits");
            return;
        }
    };
    let changed: Vec<ProgramId> = seen
        .keys()
        .chain(now.keys())
        .filter(|id| seen.get(*id) != now.get(*id))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for id in &changed {
        reload(pulses, id, "found by comparing").await;
    }
    *seen = now;
}

async fn reload(pulses: &Pulses, id: &ProgramId, how: &'static str) {
    match super::sync::reload_program(pulses, id).await {
        Ok(true) => {
            tracing::info!(program = %id, how, "a run-time edit made on another replica is in force here")
        }
        Ok(false) => {
            tracing::debug!(program = %id, "an edit of a program this replica's files do not hold")
        }
        Err(e) => {
            tracing::error!(program = %id, error = %e, "cannot reload a program edited on another replica; the previous configuration stays in force")
        }
    }
}
