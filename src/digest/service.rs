//! Building and sending a digest: read the numbers (storage), apply the rules (numbers),
//! render (message), and record + queue the post once per channel and period.

use chrono::{DateTime, Utc};
use std::fmt;

use super::message;
use super::numbers::{self, Context, Digest};
use super::period::{periods_at, periods_ending_at, Periods};
use crate::domain::program::Program;
use crate::storage::digest::{DigestQuery, NewDigest};
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("the digest cadence '{0}' never fires")]
    NoPeriod(String),
    #[error("program '{0}' has no sponsor_channels to post the digest to")]
    NoChannels(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outbox key of one digest post: one per program, period and channel, whatever
/// restarts or replicas (`digest:{program}:{period start ms}:{channel}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPostKey<'a> {
    pub program: &'a str,
    pub period_start: DateTime<Utc>,
    pub channel: &'a str,
}

impl fmt::Display for DigestPostKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "digest:{}:{}:{}",
            self.program,
            self.period_start.timestamp_millis(),
            self.channel
        )
    }
}

/// What a send did, per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendOutcome {
    pub period_start: String,
    pub period_end: String,
    /// Channels the digest was queued for now.
    pub queued: Vec<String>,
    /// Channels that already had this period's digest.
    pub already_posted: Vec<String>,
}

/// The periods of the digest current at `now` (a preview, a manual send).
pub fn current_periods(program: &Program, now: DateTime<Utc>) -> Result<Periods, DigestError> {
    periods_at(&program.digest.cadence, program.timezone, now)
        .ok_or_else(|| DigestError::NoPeriod(program.digest.cadence.to_string()))
}

/// The periods of the digest that ends at the cadence firing `firing` (the scheduler).
pub fn periods_ending(program: &Program, firing: DateTime<Utc>) -> Result<Periods, DigestError> {
    periods_ending_at(&program.digest.cadence, program.timezone, firing)
        .ok_or_else(|| DigestError::NoPeriod(program.digest.cadence.to_string()))
}

/// The program's metric keys in question order.
fn metric_order(program: &Program) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for s in &program.surveys {
        for q in &s.questions {
            if !keys.contains(&q.key) {
                keys.push(q.key.clone());
            }
        }
    }
    keys
}

/// Computes and renders the digest of the last of `periods`.
#[tracing::instrument(skip_all, fields(program = %program.id))]
pub async fn build(
    store: &Store,
    program: &Program,
    periods: &Periods,
) -> Result<Digest, DigestError> {
    let data = store
        .digest_data(&DigestQuery {
            program_id: &program.id,
            bounds: periods.bounds,
            baseline_rounds: i64::from(program.baseline_rounds),
            default_k: i64::from(program.anonymity_threshold),
        })
        .await?;
    let ctx = Context {
        program_id: program.id.as_str(),
        program_name: &program.name,
        tz: program.timezone,
        k: program.anonymity_threshold,
        comment_threshold: program.comment_threshold,
        metric_order: metric_order(program),
        periods,
    };
    let mut digest = numbers::compute(&ctx, data, &mut fastrand::Rng::new());
    let last_day = (periods.current().end - chrono::Duration::milliseconds(1))
        .with_timezone(&program.timezone)
        .date_naive();
    digest.kpis = store
        .kpi_summaries(&program.id, program.baseline_rounds, last_day)
        .await?;
    message::render(&mut digest);
    Ok(digest)
}

/// The digest of the current period so far (previews: the CLI, the API, `/pulse digest`,
/// App Home). Nothing is recorded or posted.
pub async fn preview(
    store: &Store,
    program: &Program,
    now: DateTime<Utc>,
) -> Result<Digest, DigestError> {
    let periods = current_periods(program, now)?;
    build(store, program, &periods).await
}

/// Records the digest of the last of `periods` for each sponsor channel and queues its post
/// through the outbox, in one transaction: a channel that already has this period's digest
/// (the `digests` row is unique per program, period and channel) gets nothing.
pub async fn send(
    store: &Store,
    program: &Program,
    periods: &Periods,
    now: DateTime<Utc>,
) -> Result<SendOutcome, DigestError> {
    if program.sponsor_channels.is_empty() {
        return Err(DigestError::NoChannels(program.id.to_string()));
    }
    let period = periods.current();
    let digest = build(store, program, periods).await?;
    let content = serde_json::to_string(&digest).unwrap_or_else(|_| "{}".into());
    let mut outcome = SendOutcome {
        period_start: digest.period.start.clone(),
        period_end: digest.period.end.clone(),
        ..SendOutcome::default()
    };
    let message = crate::slack::protocol::SlackMessage {
        text: digest.text.clone(),
        blocks: digest.blocks.clone(),
    };
    let mut tx = store.begin().await?;
    for channel in &program.sponsor_channels {
        let key = DigestPostKey {
            program: program.id.as_str(),
            period_start: period.start,
            channel,
        };
        let mut post = NewOutboxMessage::new(
            key.to_string(),
            "chat.postMessage",
            message.payload(Some(channel)),
        );
        post.channel_key = Some(channel.clone());
        post.message_key = Some(key.to_string());
        let recorded = tx
            .record_digest(
                &NewDigest {
                    program_id: &program.id,
                    period_start: period.start,
                    period_end: period.end,
                    channel_id: channel,
                    content: &content,
                    post,
                },
                now,
            )
            .await?;
        if recorded {
            // The chart follows the post (its own outbox row, its own dedupe key). A chart
            // that cannot be drawn never holds the digest back.
            if program.digest.chart {
                let chart_key = format!("{key}:chart");
                match super::chart::enqueue_digest_chart(&mut tx, &digest, channel, &chart_key, now)
                    .await
                {
                    Ok(_) => {}
                    Err(super::chart::ChartUploadError::Store(e)) => return Err(e.into()),
                    Err(super::chart::ChartUploadError::Chart(e)) => {
                        tracing::warn!(program = %program.id, error = %e, "digest chart not drawn; the digest goes without it");
                    }
                }
            }
            outcome.queued.push(channel.clone());
        } else {
            outcome.already_posted.push(channel.clone());
        }
    }
    tx.commit().await?;
    tracing::info!(program = %program.id, queued = outcome.queued.len(),
        already = outcome.already_posted.len(), "digest recorded");
    Ok(outcome)
}
