//! `tz_offset` and `tz_label` for `users.info`, computed from the IANA zone name.
//!
//! The emulator may not depend on a time-zone database, so this is a small table of common
//! zones with their daylight-saving rules. The bot itself uses a real database; this only has
//! to make the user objects look like Slack's (`tz` is always echoed exactly). Unknown zones
//! report offset 0 and their own name as the label.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// When a zone switches to daylight-saving time.
#[derive(Clone, Copy)]
enum Dst {
    None,
    /// EU: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// US/Canada: second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
    /// South-east Australia: first Sunday of October 02:00 to first Sunday of April 03:00 local.
    Au,
    /// New Zealand: last Sunday of September 02:00 to first Sunday of April 03:00 local.
    Nz,
}

struct Zone {
    name: &'static str,
    std_secs: i32,
    dst: Dst,
    std_label: &'static str,
    dst_label: &'static str,
}

const fn z(
    name: &'static str,
    std_secs: i32,
    dst: Dst,
    std_label: &'static str,
    dst_label: &'static str,
) -> Zone {
    Zone {
        name,
        std_secs,
        dst,
        std_label,
        dst_label,
    }
}

const H: i32 = 3600;
const CET: (&str, &str) = ("Central European Time", "Central European Summer Time");
const EET: (&str, &str) = ("Eastern European Time", "Eastern European Summer Time");

#[rustfmt::skip]
const ZONES: &[Zone] = &[
    z("UTC", 0, Dst::None, "Coordinated Universal Time", ""),
    z("Etc/UTC", 0, Dst::None, "Coordinated Universal Time", ""),
    z("GMT", 0, Dst::None, "Greenwich Mean Time", ""),
    z("Europe/London", 0, Dst::Eu, "Greenwich Mean Time", "British Summer Time"),
    z("Europe/Dublin", 0, Dst::Eu, "Greenwich Mean Time", "Irish Standard Time"),
    z("Europe/Lisbon", 0, Dst::Eu, "Western European Time", "Western European Summer Time"),
    z("Europe/Berlin", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Paris", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Madrid", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Rome", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Amsterdam", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Brussels", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Vienna", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Zurich", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Stockholm", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Oslo", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Copenhagen", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Warsaw", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Prague", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Budapest", H, Dst::Eu, CET.0, CET.1),
    z("Europe/Helsinki", 2 * H, Dst::Eu, EET.0, EET.1),
    z("Europe/Athens", 2 * H, Dst::Eu, EET.0, EET.1),
    z("Europe/Kyiv", 2 * H, Dst::Eu, EET.0, EET.1),
    z("Europe/Kiev", 2 * H, Dst::Eu, EET.0, EET.1),
    z("Europe/Bucharest", 2 * H, Dst::Eu, EET.0, EET.1),
    z("Europe/Istanbul", 3 * H, Dst::None, "Turkey Time", ""),
    z("Europe/Moscow", 3 * H, Dst::None, "Moscow Standard Time", ""),
    z("Africa/Lagos", H, Dst::None, "West Africa Time", ""),
    z("Africa/Johannesburg", 2 * H, Dst::None, "South Africa Standard Time", ""),
    z("Africa/Nairobi", 3 * H, Dst::None, "East Africa Time", ""),
    z("America/New_York", -5 * H, Dst::Us, "Eastern Standard Time", "Eastern Daylight Time"),
    z("America/Toronto", -5 * H, Dst::Us, "Eastern Standard Time", "Eastern Daylight Time"),
    z("America/Chicago", -6 * H, Dst::Us, "Central Standard Time", "Central Daylight Time"),
    z("America/Denver", -7 * H, Dst::Us, "Mountain Standard Time", "Mountain Daylight Time"),
    z("America/Phoenix", -7 * H, Dst::None, "Mountain Standard Time", ""),
    z("America/Los_Angeles", -8 * H, Dst::Us, "Pacific Standard Time", "Pacific Daylight Time"),
    z("America/Vancouver", -8 * H, Dst::Us, "Pacific Standard Time", "Pacific Daylight Time"),
    z("America/Anchorage", -9 * H, Dst::Us, "Alaska Standard Time", "Alaska Daylight Time"),
    z("Pacific/Honolulu", -10 * H, Dst::None, "Hawaii-Aleutian Standard Time", ""),
    z("America/Mexico_City", -6 * H, Dst::None, "Central Standard Time", ""),
    z("America/Sao_Paulo", -3 * H, Dst::None, "Brasilia Standard Time", ""),
    z("America/Argentina/Buenos_Aires", -3 * H, Dst::None, "Argentina Standard Time", ""),
    z("Asia/Dubai", 4 * H, Dst::None, "Gulf Standard Time", ""),
    z("Asia/Kolkata", 5 * H + 1800, Dst::None, "India Standard Time", ""),
    z("Asia/Calcutta", 5 * H + 1800, Dst::None, "India Standard Time", ""),
    z("Asia/Bangkok", 7 * H, Dst::None, "Indochina Time", ""),
    z("Asia/Jakarta", 7 * H, Dst::None, "Western Indonesia Time", ""),
    z("Asia/Shanghai", 8 * H, Dst::None, "China Standard Time", ""),
    z("Asia/Hong_Kong", 8 * H, Dst::None, "Hong Kong Standard Time", ""),
    z("Asia/Singapore", 8 * H, Dst::None, "Singapore Standard Time", ""),
    z("Asia/Manila", 8 * H, Dst::None, "Philippine Standard Time", ""),
    z("Australia/Perth", 8 * H, Dst::None, "Australian Western Standard Time", ""),
    z("Asia/Tokyo", 9 * H, Dst::None, "Japan Standard Time", ""),
    z("Asia/Seoul", 9 * H, Dst::None, "Korean Standard Time", ""),
    z("Australia/Brisbane", 10 * H, Dst::None, "Australian Eastern Standard Time", ""),
    z("Australia/Sydney", 10 * H, Dst::Au, "Australian Eastern Standard Time", "Australian Eastern Daylight Time"),
    z("Australia/Melbourne", 10 * H, Dst::Au, "Australian Eastern Standard Time", "Australian Eastern Daylight Time"),
    z("Pacific/Auckland", 12 * H, Dst::Nz, "New Zealand Standard Time", "New Zealand Daylight Time"),
];

/// The offset from UTC in seconds and Slack's human label for `tz` at the instant `at`.
pub fn offset_and_label(tz: &str, at: DateTime<Utc>) -> (i32, String) {
    let Some(zone) = ZONES.iter().find(|z| z.name == tz) else {
        return (0, tz.to_string());
    };
    if in_dst(zone, at) {
        (zone.std_secs + H, zone.dst_label.to_string())
    } else {
        (zone.std_secs, zone.std_label.to_string())
    }
}

fn in_dst(zone: &Zone, at: DateTime<Utc>) -> bool {
    let year = at.year();
    // A local wall-clock time in standard time, expressed in UTC.
    let local_std = |date: Option<NaiveDate>, hour: i64| -> Option<DateTime<Utc>> {
        let midnight = date?.and_hms_opt(0, 0, 0)?;
        Some(
            Utc.from_utc_datetime(&midnight) + Duration::hours(hour)
                - Duration::seconds(i64::from(zone.std_secs)),
        )
    };
    let utc_at = |date: Option<NaiveDate>, hour: i64| -> Option<DateTime<Utc>> {
        Some(Utc.from_utc_datetime(&date?.and_hms_opt(0, 0, 0)?) + Duration::hours(hour))
    };
    let window = match zone.dst {
        Dst::None => return false,
        Dst::Eu => (
            utc_at(last_sunday(year, 3), 1),
            utc_at(last_sunday(year, 10), 1),
            false,
        ),
        // The autumn switch happens at 02:00 daylight time, i.e. 01:00 standard time.
        Dst::Us => (
            local_std(nth_sunday(year, 3, 2), 2),
            local_std(nth_sunday(year, 11, 1), 1),
            false,
        ),
        // Southern hemisphere: daylight time spans the new year, so the window is inverted.
        Dst::Au => (
            local_std(nth_sunday(year, 4, 1), 2),
            local_std(nth_sunday(year, 10, 1), 2),
            true,
        ),
        Dst::Nz => (
            local_std(nth_sunday(year, 4, 1), 2),
            local_std(last_sunday(year, 9), 2),
            true,
        ),
    };
    match window {
        (Some(start), Some(end), false) => start <= at && at < end,
        (Some(std_start), Some(std_end), true) => !(std_start <= at && at < std_end),
        _ => false,
    }
}

fn nth_sunday(year: i32, month: u32, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n)
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    nth_sunday(year, month, 5).or_else(|| nth_sunday(year, month, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn berlin_switches_on_the_last_sundays_at_one_utc() {
        assert_eq!(
            offset_and_label("Europe/Berlin", at("2025-03-30T00:59:59Z")).0,
            3600
        );
        assert_eq!(
            offset_and_label("Europe/Berlin", at("2025-03-30T01:00:00Z")).0,
            7200
        );
        assert_eq!(
            offset_and_label("Europe/Berlin", at("2025-10-26T00:59:59Z")).0,
            7200
        );
        assert_eq!(
            offset_and_label("Europe/Berlin", at("2025-10-26T01:00:00Z")).0,
            3600
        );
    }

    #[test]
    fn new_york_switches_at_two_local() {
        // 2025-03-09 02:00 EST = 07:00 UTC; 2025-11-02 02:00 EDT = 06:00 UTC.
        assert_eq!(
            offset_and_label("America/New_York", at("2025-03-09T06:59:00Z")).0,
            -18000
        );
        assert_eq!(
            offset_and_label("America/New_York", at("2025-03-09T07:00:00Z")).0,
            -14400
        );
        assert_eq!(
            offset_and_label("America/New_York", at("2025-11-02T05:59:00Z")).0,
            -14400
        );
        assert_eq!(
            offset_and_label("America/New_York", at("2025-11-02T06:00:00Z")).0,
            -18000
        );
    }

    #[test]
    fn sydney_has_summer_time_in_january() {
        let (secs, label) = offset_and_label("Australia/Sydney", at("2025-01-15T00:00:00Z"));
        assert_eq!(
            (secs, label.as_str()),
            (39600, "Australian Eastern Daylight Time")
        );
        assert_eq!(
            offset_and_label("Australia/Sydney", at("2025-07-15T00:00:00Z")).0,
            36000
        );
    }

    #[test]
    fn unknown_zones_are_zero_with_their_name() {
        assert_eq!(
            offset_and_label("Mars/Olympus", at("2025-01-01T00:00:00Z")),
            (0, "Mars/Olympus".to_string())
        );
        assert_eq!(
            offset_and_label("Asia/Kolkata", at("2025-01-01T00:00:00Z")).0,
            19800
        );
    }
}
