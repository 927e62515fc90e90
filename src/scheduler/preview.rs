//! The schedule preview: upcoming deliveries with each member's local time and UTC, for
//! `pulseloop schedule preview` and `GET /api/v1/programs/{id}/schedule`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::planning::{member_firings, PlanMember};
use crate::domain::program::Program;

/// One upcoming delivery. The JSON shape is part of the external contract.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PreviewEntry {
    pub member: slack_facts::ids::UserId,
    pub survey: String,
    pub local_time: String,
    pub utc: String,
    pub timezone: String,
}

/// Deliveries in [now, now + days), ordered by UTC time, then member, then survey.
/// Planned times only: pauses and Slack status are ignored (docs/cadence.md).
pub fn preview(
    program: &Program,
    members: &[PlanMember],
    now: DateTime<Utc>,
    days: u32,
) -> Vec<PreviewEntry> {
    let to = now + Duration::days(i64::from(days));
    let mut rows: Vec<(DateTime<Utc>, PreviewEntry)> = Vec::new();
    for survey in &program.surveys {
        for member in members {
            for firing in member_firings(program, survey, member, now, to) {
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
    rows.into_iter().map(|(_, e)| e).collect()
}

/// A fixed-width table for terminals.
pub fn render_table(entries: &[PreviewEntry]) -> String {
    let mut out = format!(
        "{:<22} {:<26} {:<22} {:<14} {}\n",
        "UTC", "LOCAL", "ZONE", "MEMBER", "SURVEY"
    );
    for e in entries {
        out.push_str(&format!(
            "{:<22} {:<26} {:<22} {:<14} {}\n",
            e.utc, e.local_time, e.timezone, e.member, e.survey
        ));
    }
    out.push_str(&format!("{} deliveries\n", entries.len()));
    out
}
