//! From a cadence and a program's rules to exact firing instants for one member:
//! `every_weeks`, start date, working days, holidays, then the DST rule.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Utc, Weekday};
use chrono_tz::Tz;
use std::collections::BTreeSet;

use super::dst::resolve_local;
use super::expr::Cadence;
use super::weekdays::WorkingDays;

/// A firing never moves further than this to reach a working day, and the look-back for
/// firings moved into a window is bounded by the same number. Past it (a year of holidays),
/// the firing is dropped: a bound instead of an endless search.
const MAX_MOVE_DAYS: u64 = 366;

/// What happens to a firing that falls on a non-working day or a holiday.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NonWorkingDayPolicy {
    /// Same local time on the next working, non-holiday day (the product default).
    #[default]
    NextWorkingDay,
    /// Dropped.
    Skip,
}

/// Everything that decides when one survey fires for one member, apart from the zone.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRules<'a> {
    pub cadence: &'a Cadence,
    /// Fire only every Nth ISO week counted from the week of `start_date`. 0 is read as 1.
    pub every_weeks: u32,
    /// Anchors `every_weeks` (its ISO week); nothing fires on a nominal date before it.
    pub start_date: NaiveDate,
    pub working_days: WorkingDays,
    /// Local dates.
    pub holidays: &'a BTreeSet<NaiveDate>,
    pub non_working_day: NonWorkingDayPolicy,
}

impl ScheduleRules<'_> {
    fn is_working(&self, date: NaiveDate) -> bool {
        self.working_days.contains(date.weekday()) && !self.holidays.contains(&date)
    }

    /// Is `date` (a nominal date) in a week the program fires in? Weeks are ISO weeks
    /// (Monday start); the distance is taken between Mondays, so it is a whole number.
    fn in_active_week(&self, date: NaiveDate) -> bool {
        let monday = |d: NaiveDate| {
            d.checked_sub_days(Days::new(d.weekday().days_since(Weekday::Mon).into()))
        };
        let (Some(this), Some(first)) = (monday(date), monday(self.start_date)) else {
            return false;
        };
        let weeks = (this - first).num_days() / 7;
        weeks.rem_euclid(i64::from(self.every_weeks.max(1))) == 0
    }

    /// The local date a firing nominally on `date` happens on, or `None` if it is dropped.
    fn landing_date(&self, date: NaiveDate) -> Option<NaiveDate> {
        if self.is_working(date) {
            return Some(date);
        }
        match self.non_working_day {
            NonWorkingDayPolicy::Skip => None,
            NonWorkingDayPolicy::NextWorkingDay => (1..=MAX_MOVE_DAYS)
                .map_while(|n| date.checked_add_days(Days::new(n)))
                .find(|d| self.is_working(*d)),
        }
    }

    /// The earliest nominal date whose firing can land on `date` or later: the day after the
    /// last working day before `date` (everything in between moves forward to `date` or
    /// beyond). With `Skip` nothing moves, so it is `date` itself.
    fn earliest_nominal_landing_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        if self.non_working_day == NonWorkingDayPolicy::Skip {
            return date;
        }
        let mut earliest = date;
        for _ in 0..MAX_MOVE_DAYS {
            match earliest.pred_opt() {
                Some(prev) if !self.is_working(prev) => earliest = prev,
                _ => break,
            }
        }
        earliest
    }
}

/// One firing of one survey for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The cron's own local time before any move: identifies the period (round) across
    /// members and zones.
    pub nominal: NaiveDateTime,
    /// Where it actually fires, in the member's zone, after the working-day move and the DST
    /// rule.
    pub local: DateTime<Tz>,
    pub utc: DateTime<Utc>,
}

impl Firing {
    /// The round this firing belongs to: the nominal local time to the minute,
    /// `%Y-%m-%dT%H:%M`. The same for every member whatever their zone or working days.
    /// (A cadence firing several times within one minute, via the seconds field, would give
    /// those firings one key; survey cadences do not do that.)
    pub fn period_key(&self) -> String {
        self.nominal.format("%Y-%m-%dT%H:%M").to_string()
    }

    /// Was it moved to another day (non-working day or holiday)?
    pub fn moved_to_another_day(&self) -> bool {
        self.local.date_naive() != self.nominal.date()
    }
}

/// All firings whose `utc` lies in the half-open `[from, to)`, ordered by `utc`. Pure: the
/// caller passes the window; there is no clock inside.
///
/// How: nominal times are the cadence evaluated on local calendar dates (so "09:00" is 09:00
/// on the member's wall clock whatever their offset), on dates from the window's UTC dates
/// widened by two days each side (zones run from −12 to +14 hours), and further back over any
/// run of non-working days just before it, whose firings move forward into the window. Then,
/// per nominal time: drop it if its date is before `start_date` or its ISO week is not an
/// active one (`every_weeks`); move it to the next working non-holiday day or drop it (the
/// policy); resolve it with [`resolve_local`]; keep it if its instant is in the window.
///
/// Collisions: when several firings land on the same instant (a firing moved onto a day that
/// has its own firing at that time, several moved firings, or times that a DST gap collapses
/// onto its end), one is kept: one not moved to another day if there is one, else the one
/// with the earliest nominal time. Never two pulses at once, and the choice does not depend
/// on the window.
///
/// Cost is linear in the window's length (plus any look-back); callers ask for days or
/// weeks, not centuries.
pub fn firings_between(
    rules: &ScheduleRules,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Firing> {
    if from >= to || rules.working_days.is_empty() {
        return Vec::new();
    }
    let widen = Days::new(2);
    let first_landing = from
        .date_naive()
        .checked_sub_days(widen)
        .unwrap_or(NaiveDate::MIN);
    let last_landing = to
        .date_naive()
        .checked_add_days(widen)
        .unwrap_or(NaiveDate::MAX);
    let first_nominal = rules
        .earliest_nominal_landing_on_or_after(first_landing)
        .max(rules.start_date);

    // (moved to another day, firing): sorted so the firing to keep comes first per instant.
    let mut found: Vec<(bool, Firing)> = Vec::new();
    for date in first_nominal.iter_days().take_while(|d| *d <= last_landing) {
        if !rules.in_active_week(date) {
            continue;
        }
        let times = rules.cadence.times_on(date);
        if times.is_empty() {
            continue;
        }
        let Some(landing) = rules.landing_date(date) else {
            continue;
        };
        for nominal in times {
            let local = resolve_local(tz, landing.and_time(nominal.time()));
            let utc = local.with_timezone(&Utc);
            if utc >= from && utc < to {
                found.push((
                    landing != date,
                    Firing {
                        nominal,
                        local,
                        utc,
                    },
                ));
            }
        }
    }
    found.sort_by(|(a_moved, a), (b_moved, b)| {
        (a.utc, a_moved, a.nominal).cmp(&(b.utc, b_moved, b.nominal))
    });
    found.dedup_by(|later, kept| later.1.utc == kept.1.utc);
    found.into_iter().map(|(_, f)| f).collect()
}
