//! Pure planning: which member gets which survey when, in their own time zone, and whether
//! now is a good moment to remind them. No clock and no database here; the scheduler tick,
//! the preview and `/pulse status` all call it.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use slack_facts::ids::UserId;

use super::cadence::{firings_between, Firing, ScheduleRules, WorkingDays};
use super::ids::MemberId;
use super::program::{Program, Role, Survey};

/// A member as the planner needs them.
#[derive(Debug, Clone)]
pub struct PlanMember {
    pub member_id: MemberId,
    pub slack_user_id: UserId,
    pub role: Role,
    pub timezone: Tz,
    pub working_days: WorkingDays,
}

/// What the planner reads of a stored member (storage maps its rows to this).
#[derive(Debug, Clone, Copy)]
pub struct MemberFacts<'a> {
    pub member_id: MemberId,
    pub slack_user_id: &'a UserId,
    pub role: &'a str,
    pub timezone_override: Option<&'a str>,
    pub slack_tz: Option<&'a str>,
    /// The member's own working days as stored: a JSON list of day names.
    pub working_days: Option<&'a str>,
}

/// A member as the planner sees them in `program`: their role, zone and working days (their
/// own, else the program's). `None` for a role the planner does not know.
pub fn plan_member(program: &Program, m: MemberFacts<'_>) -> Option<PlanMember> {
    let role = Role::parse(m.role)?;
    let working_days = m
        .working_days
        .and_then(|w| serde_json::from_str::<Vec<String>>(w).ok())
        .and_then(|names| WorkingDays::parse_names(&names).ok())
        .unwrap_or(program.working_days);
    Some(PlanMember {
        member_id: m.member_id,
        slack_user_id: m.slack_user_id.clone(),
        role,
        timezone: member_timezone(program, m.timezone_override, m.slack_tz),
        working_days,
    })
}

/// The zone a member's pulses follow: the file's override, else Slack's, else the program's.
pub fn member_timezone(program: &Program, override_tz: Option<&str>, slack_tz: Option<&str>) -> Tz {
    override_tz
        .and_then(|tz| tz.parse().ok())
        .or_else(|| slack_tz.and_then(|tz| tz.parse().ok()))
        .unwrap_or(program.timezone)
}

pub fn rules<'a>(
    program: &'a Program,
    survey: &'a Survey,
    working_days: WorkingDays,
) -> ScheduleRules<'a> {
    ScheduleRules {
        cadence: &survey.cadence,
        every_weeks: survey.every_weeks,
        start_date: program.start_date,
        working_days,
        holidays: &program.holidays,
        non_working_day: program.on_non_working_day,
    }
}

/// Firings of `survey` for `member` with UTC time in [from, to).
pub fn member_firings(
    program: &Program,
    survey: &Survey,
    member: &PlanMember,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Firing> {
    if !survey.audience.contains(&member.role) {
        return Vec::new();
    }
    firings_between(
        &rules(program, survey, member.working_days),
        member.timezone,
        from,
        to,
    )
}

/// True when `at` falls inside the member's working hours on a working, non-holiday day.
pub fn within_working_hours(program: &Program, member: &PlanMember, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&member.timezone);
    let (start, end) = program.working_hours;
    member.working_days.contains(local.weekday())
        && !program.holidays.contains(&local.date_naive())
        && local.time() >= start
        && local.time() < end
}

/// Slack status that means "away" (docs/cadence.md, "Out of office, misfires, the preview").
pub fn is_out_of_office(status_text: Option<&str>, status_emoji: Option<&str>) -> bool {
    let emoji_away = matches!(status_emoji, Some(":palm_tree:") | Some(":airplane:"));
    let text_away = status_text.is_some_and(|t| {
        let t = t.to_lowercase();
        ["vacation", "holiday", "out of office", "ooo"]
            .iter()
            .any(|w| t.contains(w))
    });
    emoji_away || text_away
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_office_matches_the_documented_signals() {
        assert!(is_out_of_office(None, Some(":palm_tree:")));
        assert!(is_out_of_office(Some("On VACATION until Monday"), None));
        assert!(is_out_of_office(Some("OOO"), Some(":house:")));
        assert!(!is_out_of_office(Some("In a meeting"), Some(":calendar:")));
        assert!(!is_out_of_office(None, None));
    }
}
