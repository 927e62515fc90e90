//! Digest periods: the time between two firings of the program's `[digest] cadence`, in the
//! program's time zone (a cron on the local wall clock, the DST rule of the cadences).
//!
//! A period is identified by its start. At instant `t` the *current* period is
//! `[last firing ≤ t, next firing > t)`. The scheduler, firing at `F`, posts the period that
//! ends at `F`, which is the current period of the instant just before `F`; a preview or a
//! manual send at `t` shows the current period so far. Either way one period has one digest
//! per channel.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::cadence::{resolve_local, Cadence};
use crate::storage::digest::TREND;

/// How far the walk over calendar dates goes before giving up (a cadence that matches no
/// date, e.g. 30 February).
const MAX_DAYS: i64 = 4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The trend periods of a digest: `bounds[i]..bounds[i + 1]`, the last being the digest's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods {
    pub bounds: [DateTime<Utc>; TREND + 1],
}

impl Periods {
    pub fn current(&self) -> Period {
        Period {
            start: self.bounds[TREND - 1],
            end: self.bounds[TREND],
        }
    }
    pub fn previous(&self) -> Period {
        Period {
            start: self.bounds[TREND - 2],
            end: self.bounds[TREND - 1],
        }
    }
    /// The start of each trend period, oldest first.
    pub fn starts(&self) -> &[DateTime<Utc>] {
        &self.bounds[..TREND]
    }
}

/// Firings at or before `at`, latest first, at most `count`.
pub fn firings_back(
    cadence: &Cadence,
    tz: Tz,
    at: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut date = at.with_timezone(&tz).date_naive() + Duration::days(1);
    for _ in 0..MAX_DAYS {
        let mut times: Vec<DateTime<Utc>> = fire_times(cadence, tz, date)
            .into_iter()
            .filter(|t| *t <= at)
            .collect();
        times.sort();
        while let Some(t) = times.pop() {
            if out.last().is_none_or(|last| t < *last) {
                out.push(t);
            }
            if out.len() == count {
                return out;
            }
        }
        date -= Duration::days(1);
    }
    out
}

/// The first firing after `at`.
pub fn next_after(cadence: &Cadence, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut date = at.with_timezone(&tz).date_naive() - Duration::days(1);
    for _ in 0..MAX_DAYS {
        let mut times: Vec<DateTime<Utc>> = fire_times(cadence, tz, date)
            .into_iter()
            .filter(|t| *t > at)
            .collect();
        times.sort();
        if let Some(t) = times.first() {
            return Some(*t);
        }
        date += Duration::days(1);
    }
    None
}

fn fire_times(cadence: &Cadence, tz: Tz, date: NaiveDate) -> Vec<DateTime<Utc>> {
    cadence
        .times_on(date)
        .into_iter()
        .map(|naive| resolve_local(tz, naive).with_timezone(&Utc))
        .collect()
}

/// The trend periods whose last one is the current period at `at`. `None` when the cadence
/// never fires (it always does for a valid cron within eleven years).
pub fn periods_at(cadence: &Cadence, tz: Tz, at: DateTime<Utc>) -> Option<Periods> {
    let back = firings_back(cadence, tz, at, TREND);
    if back.len() < TREND {
        return None;
    }
    let end = next_after(cadence, tz, at)?;
    let mut bounds = [end; TREND + 1];
    for (i, t) in back.iter().rev().enumerate() {
        bounds[i] = *t;
    }
    Some(Periods { bounds })
}

/// The trend periods whose last one ends at the firing `firing` (what the scheduler posts).
pub fn periods_ending_at(cadence: &Cadence, tz: Tz, firing: DateTime<Utc>) -> Option<Periods> {
    periods_at(cadence, tz, firing - Duration::milliseconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fri_16() -> Cadence {
        Cadence::parse("0 16 * * FRI").unwrap()
    }

    #[test]
    fn the_current_period_runs_from_the_last_firing_to_the_next_in_the_program_zone() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // Wednesday 2027-01-13 12:00 UTC: last Friday 16:00 Berlin = 15:00 UTC on the 8th.
        let at = Utc.with_ymd_and_hms(2027, 1, 13, 12, 0, 0).unwrap();
        let p = periods_at(&fri_16(), tz, at).unwrap();
        assert_eq!(
            p.current().start,
            Utc.with_ymd_and_hms(2027, 1, 8, 15, 0, 0).unwrap()
        );
        assert_eq!(
            p.current().end,
            Utc.with_ymd_and_hms(2027, 1, 15, 15, 0, 0).unwrap()
        );
        assert_eq!(
            p.previous().start,
            Utc.with_ymd_and_hms(2027, 1, 1, 15, 0, 0).unwrap()
        );
        assert_eq!(
            p.bounds[0],
            Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap()
        );
        assert!(p.bounds.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn at_a_firing_the_scheduler_posts_the_period_that_ends_there() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let firing = Utc.with_ymd_and_hms(2027, 1, 15, 15, 0, 0).unwrap();
        let p = periods_ending_at(&fri_16(), tz, firing).unwrap();
        assert_eq!(p.current().end, firing);
        assert_eq!(
            p.current().start,
            Utc.with_ymd_and_hms(2027, 1, 8, 15, 0, 0).unwrap()
        );
        // The instant of the firing itself starts the next period.
        assert_eq!(
            periods_at(&fri_16(), tz, firing).unwrap().current().start,
            firing
        );
    }

    #[test]
    fn periods_follow_the_local_clock_across_dst() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // Berlin moves to summer time on Sunday 2027-03-28: Friday 16:00 is 15:00 UTC before,
        // 14:00 UTC after.
        let at = Utc.with_ymd_and_hms(2027, 3, 31, 12, 0, 0).unwrap();
        let p = periods_at(&fri_16(), tz, at).unwrap();
        assert_eq!(
            p.current().start,
            Utc.with_ymd_and_hms(2027, 3, 26, 15, 0, 0).unwrap()
        );
        assert_eq!(
            p.current().end,
            Utc.with_ymd_and_hms(2027, 4, 2, 14, 0, 0).unwrap()
        );
    }
}
