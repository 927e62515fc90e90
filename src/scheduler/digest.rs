//! The digest step of the tick: at each firing of a program's `[digest] cadence` (in the
//! program's zone), the period that ends there is posted to every sponsor channel, once.
//!
//! Once, whatever restarts or replicas: the `digests` row is unique per program, period and
//! channel and is inserted first, in the transaction that queues the post; its outbox row has
//! a dedupe key of the same three. Two schedulers firing together both compute the digest;
//! one inserts, the other finds the row and queues nothing. A firing missed while the service
//! was down is posted late, within [`LATE_LIMIT`].

use chrono::{DateTime, Duration, Utc};

use crate::digest::period::firings_back;
use crate::digest::service::{periods_ending, send};
use crate::digest::DigestError;
use crate::domain::program::Program;
use crate::pulse::catalog::Catalog;
use crate::storage::{Store, StoreResult};

/// A digest firing older than this is not posted any more (the next one will be).
pub const LATE_LIMIT: Duration = Duration::hours(24);

/// Posts the digests that are due at `now`; returns how many channel posts were queued.
/// Programs in `waiting` (their workspace is not installed yet, OAuth-only mode) post nothing:
/// their digest is posted once the workspace is installed, within [`LATE_LIMIT`].
pub(super) async fn post_due_digests(
    store: &Store,
    catalog: &Catalog,
    waiting: &std::collections::HashSet<crate::domain::ids::ProgramId>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut queued = 0;
    for program in catalog.programs().iter() {
        if waiting.contains(&program.id) {
            continue;
        }
        let team = program.team_id.clone();
        let posted = crate::storage::installations::for_team(team, post_due(store, program, now));
        match posted.await {
            Ok(n) => queued += n,
            Err(DigestError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(program = %program.id, error = %e, "digest not posted"),
        }
    }
    Ok(queued)
}

async fn post_due(
    store: &Store,
    program: &Program,
    now: DateTime<Utc>,
) -> Result<usize, DigestError> {
    if program.sponsor_channels.is_empty() {
        return Ok(0);
    }
    let Some(firing) = firings_back(&program.digest.cadence, program.timezone, now, 1)
        .first()
        .copied()
    else {
        return Ok(0);
    };
    if firing < now - LATE_LIMIT || !started_by(program, firing) {
        return Ok(0);
    }
    let periods = periods_ending(program, firing)?;
    let start = periods.current().start;
    let mut missing = false;
    for channel in &program.sponsor_channels {
        if !store.digest_posted(&program.id, start, channel).await? {
            missing = true;
        }
    }
    if !missing {
        return Ok(0);
    }
    let outcome = send(store, program, &periods, now).await?;
    Ok(outcome.queued.len())
}

/// The program had started when the period ended (no digest of the time before it).
fn started_by(program: &Program, firing: DateTime<Utc>) -> bool {
    firing.with_timezone(&program.timezone).date_naive() > program.start_date
}
