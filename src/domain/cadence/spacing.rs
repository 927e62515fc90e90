//! How often a cadence can fire, read from the cron text alone (no zone, no working days):
//! whether it fires at all, and whether two firings can come closer than a survey's window.
//! `check-config` and the loader use it to refuse a cadence that would open rounds faster
//! than they close, and to warn about one that never fires (`0 9 30 FEB *`).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use super::Cadence;

/// 28 years of dates: every combination of weekday, month day and leap year recurs in it.
const SPAN_DAYS: u64 = 28 * 366;

fn dates() -> impl Iterator<Item = NaiveDate> {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    start.iter_days().take(SPAN_DAYS as usize)
}

impl Cadence {
    /// False when no date ever matches (a day that does not exist in its month).
    pub fn fires_ever(&self) -> bool {
        dates().any(|d| self.matches_date(d))
    }

    /// The first gap between two consecutive firings (local wall clock) shorter than
    /// `limit`, if any. With `same_week_only` (a survey every N > 1 weeks) only firings in
    /// the same ISO week count as consecutive. Stops at the first such gap, so a cadence
    /// that fires every second costs two firings, not a day of them.
    pub fn gap_shorter_than(&self, limit: Duration, same_week_only: bool) -> Option<Duration> {
        let mut previous: Option<NaiveDateTime> = None;
        for date in dates() {
            for t in self.times_on(date) {
                if let Some(p) = previous {
                    let consecutive = !same_week_only || p.date().iso_week() == t.date().iso_week();
                    let gap = t - p;
                    if consecutive && gap < limit {
                        return Some(gap);
                    }
                }
                previous = Some(t);
            }
        }
        None
    }
}

/// "1 second", "15 minutes", "24 hours", "7 days": a gap as a person says it.
pub fn describe_gap(gap: Duration) -> String {
    let s = gap.num_seconds();
    let (n, unit) = if s < 60 {
        (s, "second")
    } else if s < 3600 {
        (s / 60, "minute")
    } else if s < 86_400 * 2 {
        (s / 3600, "hour")
    } else {
        (s / 86_400, "day")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(expr: &str) -> Cadence {
        Cadence::parse(expr).unwrap()
    }

    #[test]
    fn a_cadence_on_a_date_that_never_exists_never_fires() {
        assert!(!cadence("0 9 30 FEB *").fires_ever());
        assert!(!cadence("0 9 31 APR,JUN *").fires_ever());
        assert!(cadence("0 9 29 FEB *").fires_ever(), "leap years");
        assert!(cadence("0 10 * * MON").fires_ever());
    }

    #[test]
    fn the_shortest_gap_is_found_and_compared_with_the_window() {
        let hours = Duration::hours;
        assert_eq!(
            cadence("* * * * * *").gap_shorter_than(hours(1), false),
            Some(Duration::seconds(1))
        );
        assert_eq!(
            cadence("0 9 * * *").gap_shorter_than(hours(48), false),
            Some(hours(24))
        );
        assert_eq!(
            cadence("0 9 * * *").gap_shorter_than(hours(24), false),
            None
        );
        assert_eq!(
            cadence("0 10 * * MON").gap_shorter_than(hours(48), false),
            None
        );
        // Monday 09:00 to 17:00 is the short gap of this one.
        assert_eq!(
            cadence("0 9,17 * * MON,FRI").gap_shorter_than(hours(72), false),
            Some(hours(8))
        );
        // Every other week: a Monday and the next Monday are two weeks apart.
        assert_eq!(
            cadence("0 10 * * MON").gap_shorter_than(hours(240), true),
            None
        );
        assert_eq!(
            cadence("0 10 * * MON").gap_shorter_than(hours(240), false),
            Some(Duration::days(7))
        );
        assert_eq!(
            cadence("0 9 30 FEB *").gap_shorter_than(hours(1), false),
            None
        );
    }

    #[test]
    fn gaps_are_described_in_words() {
        assert_eq!(describe_gap(Duration::seconds(1)), "1 second");
        assert_eq!(describe_gap(Duration::minutes(15)), "15 minutes");
        assert_eq!(describe_gap(Duration::hours(24)), "24 hours");
        assert_eq!(describe_gap(Duration::days(7)), "7 days");
    }
}
