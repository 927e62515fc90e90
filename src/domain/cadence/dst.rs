//! The product's DST rule, on its own so that other code (pauses "until" a date, previews)
//! turns local wall-clock times into instants the same way the schedule does.

use chrono::{DateTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

/// How far past a non-existent local time to look for the end of the gap. Real gaps are an
/// hour or less, except whole skipped days (Pacific/Apia on 2011-12-30); 48 h covers both.
const MAX_GAP_MINUTES: u32 = 48 * 60;

/// Turns a naive local time into an instant in `tz`, by the product's DST rule:
///
/// - a time that does not exist (spring-forward gap) resolves to the first valid whole minute
///   after the gap: 02:30 → 03:00 on a 02:00→03:00 jump, 02:15 → 02:30 on Lord Howe's
///   half-hour jump. The time moves to the end of the gap rather than by the gap's length,
///   so a survey is never later than the first minute the clock shows again;
/// - a time that happens twice (fall-back) resolves to its first (earlier) occurrence, so it
///   fires once.
///
/// Never panics: for dates at the very edge of chrono's range, where no valid local time can
/// be found, the naive time is read as a wall-clock time at the zone's UTC offset there.
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return t;
    }
    // In a gap. Step whole minutes from the minute `naive` falls in; the first one the zone
    // accepts is the first valid minute after the gap.
    let mut candidate = naive
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .unwrap_or(naive);
    for _ in 0..MAX_GAP_MINUTES {
        let Some(next) = candidate.checked_add_signed(TimeDelta::minutes(1)) else {
            break;
        };
        candidate = next;
        if let Some(t) = tz.from_local_datetime(&candidate).earliest() {
            return t;
        }
    }
    edge_of_range(tz, naive)
}

/// Only reached at the limits of `NaiveDateTime` (no real gap is this long): keep the wall
/// time and take the offset in force there, or, if that instant is not representable, read
/// the time as UTC (whose local time then is representable, because the offset points back
/// into the range).
fn edge_of_range(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    let offset = tz.offset_from_utc_datetime(&naive);
    match naive.checked_sub_offset(offset.fix()) {
        Some(utc) => DateTime::from_naive_utc_and_offset(utc, offset),
        None => tz.from_utc_datetime(&naive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use chrono_tz::{America, Australia, Pacific};

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, s))
            .expect("valid test time")
    }

    fn utc_of(tz: Tz, naive: NaiveDateTime) -> String {
        resolve_local(tz, naive)
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_to_the_end_of_the_gap() {
        let t = resolve_local(America::New_York, at(2027, 3, 14, 2, 30, 0));
        assert_eq!(t.format("%H:%M %Z").to_string(), "03:00 EDT");
        assert_eq!(
            utc_of(America::New_York, at(2027, 3, 14, 2, 0, 0)),
            "2027-03-14T07:00:00Z"
        );
        assert_eq!(
            utc_of(America::New_York, at(2027, 3, 14, 2, 59, 59)),
            "2027-03-14T07:00:00Z",
            "seconds in the gap land on the first whole valid minute"
        );
        // 02:00 exists the day before: nothing moves outside the gap.
        assert_eq!(
            utc_of(America::New_York, at(2027, 3, 13, 2, 30, 0)),
            "2027-03-13T07:30:00Z"
        );
    }

    #[test]
    fn a_repeated_time_resolves_to_its_first_occurrence() {
        let t = resolve_local(America::New_York, at(2027, 11, 7, 1, 30, 0));
        assert_eq!(t.format("%H:%M %Z").to_string(), "01:30 EDT");
        assert_eq!(
            utc_of(America::New_York, at(2027, 11, 7, 1, 30, 0)),
            "2027-11-07T05:30:00Z"
        );
    }

    #[test]
    fn half_hour_dst_zones() {
        // Lord Howe: +10:30 → +11 at 02:00 on 2027-10-03, back at 02:00 on 2027-04-04.
        let lh = Australia::Lord_Howe;
        let t = resolve_local(lh, at(2027, 10, 3, 2, 15, 0));
        assert_eq!(t.format("%H:%M %:z").to_string(), "02:30 +11:00");
        let t = resolve_local(lh, at(2027, 4, 4, 1, 45, 0));
        assert_eq!(
            t.format("%H:%M %:z").to_string(),
            "01:45 +11:00",
            "first occurrence"
        );
    }

    #[test]
    fn a_skipped_day_resolves_to_the_next_day_that_exists() {
        // Samoa skipped 2011-12-30 entirely (moved across the date line).
        let t = resolve_local(Pacific::Apia, at(2011, 12, 30, 9, 0, 0));
        assert_eq!(t.format("%Y-%m-%d %H:%M").to_string(), "2011-12-31 00:00");
    }

    #[test]
    fn the_edges_of_the_calendar_do_not_panic() {
        for tz in [Pacific::Kiritimati, Pacific::Pago_Pago, America::New_York] {
            let _ = resolve_local(tz, NaiveDateTime::MIN);
            let _ = resolve_local(tz, NaiveDateTime::MAX);
        }
    }
}
