//! The schedule preview: upcoming deliveries with each member's local time and UTC, for
//! `pulseloop schedule preview` and `GET /api/v1/programs/{id}/schedule`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::planning::{member_firings, PlanMember};
use crate::domain::program::Program;

/// One upcoming delivery. The JSON shape is part of the external contract.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PreviewEntry {
    #[schema(value_type = String)]
    pub member: slack_facts::ids::UserId,
    pub survey: String,
    pub local_time: String,
    pub utc: String,
    pub timezone: String,
}

/// The most days ahead a preview covers (the API and the CLI).
pub const MAX_DAYS: u32 = 366;

/// The most rows `GET …/schedule` answers; beyond it, fewer days must be asked for.
pub const MAX_API_ROWS: usize = 20_000;

/// The most rows `pulseloop schedule preview` prints.
pub const MAX_CLI_ROWS: usize = 500_000;

/// A preview with more rows than allowed: nothing is returned (the caller asks for fewer days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the schedule for the next {days} days has more than {max_rows} deliveries; ask for fewer days"
)]
pub struct TooManyRows {
    pub days: u32,
    pub max_rows: usize,
}

/// Deliveries in [now, now + days), ordered by UTC time, then member, then survey.
/// Planned times only: members' pauses and Slack status are ignored (docs/cadence.md); a
/// paused survey has none.
pub fn preview(
    program: &Program,
    members: &[PlanMember],
    now: DateTime<Utc>,
    days: u32,
) -> Vec<PreviewEntry> {
    preview_bounded(program, members, now, days, usize::MAX).unwrap_or_default()
}

/// [`preview`], stopping as soon as it would exceed `max_rows` rows: the memory it holds is
/// bounded by `max_rows`, whatever the cadences and the number of members.
pub fn preview_bounded(
    program: &Program,
    members: &[PlanMember],
    now: DateTime<Utc>,
    days: u32,
    max_rows: usize,
) -> Result<Vec<PreviewEntry>, TooManyRows> {
    let to = now + Duration::days(i64::from(days));
    let mut rows: Vec<(DateTime<Utc>, PreviewEntry)> = Vec::new();
    // A paused survey sends nothing until it is resumed, so it has no upcoming deliveries.
    for survey in program.surveys.iter().filter(|s| !s.paused) {
        for member in members {
            let firings = member_firings(program, survey, member, now, to);
            if rows.len().saturating_add(firings.len()) > max_rows {
                return Err(TooManyRows { days, max_rows });
            }
            for firing in firings {
                rows.push((
                    firing.utc,
                    PreviewEntry {
                        member: member.slack_user_id.clone(),
                        survey: survey.id.clone(),
                        local_time: firing.local.to_rfc3339_opts(SecondsFormat::Secs, false),
                        utc: firing.utc.to_rfc3339_opts(SecondsFormat::Secs, true),
                        timezone: member.timezone.name().to_string(),
                    },
                ));
            }
        }
    }
    rows.sort_by(|a, b| (a.0, &a.1.member, &a.1.survey).cmp(&(b.0, &b.1.member, &b.1.survey)));
    Ok(rows.into_iter().map(|(_, e)| e).collect())
}

/// A fixed-width table for terminals.
pub fn render_table(entries: &[PreviewEntry]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_table(&mut out, entries);
    String::from_utf8_lossy(&out).into_owned()
}

/// The table, written row by row (the CLI streams it to standard output, where a reader
/// such as `head` may stop reading: the caller sees that as a `BrokenPipe` error).
pub fn write_table(out: &mut impl std::io::Write, entries: &[PreviewEntry]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<22} {:<26} {:<22} {:<14} SURVEY",
        "UTC", "LOCAL", "ZONE", "MEMBER"
    )?;
    for e in entries {
        writeln!(
            out,
            "{:<22} {:<26} {:<22} {:<14} {}",
            e.utc, e.local_time, e.timezone, e.member, e.survey
        )?;
    }
    writeln!(out, "{} deliveries", entries.len())
}
