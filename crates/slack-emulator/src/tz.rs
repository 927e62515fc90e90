//! `tz_offset` and `tz_label` for users.info, from the IANA database (chrono-tz), so every
//! zone and every daylight-saving rule is right at the instant asked about.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The offset from UTC in seconds and a label for `tz` at `at`. Slack's labels are long
/// names ("Central European Time"); the zone's abbreviation stands in for them here. An
/// unknown zone gets offset 0 and its own name as the label.
pub fn offset_and_label(tz: &str, at: DateTime<Utc>) -> (i32, String) {
    match tz.parse::<Tz>() {
        Ok(zone) => {
            let local = zone.from_utc_datetime(&at.naive_utc());
            (
                local.offset().fix().local_minus_utc(),
                local.format("%Z").to_string(),
            )
        }
        Err(_) => (0, tz.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        assert_eq!(
            offset_and_label("Europe/Berlin", at(2027, 1, 4, 12)),
            (3600, "CET".into())
        );
        assert_eq!(
            offset_and_label("Europe/Berlin", at(2027, 7, 4, 12)),
            (7200, "CEST".into())
        );
        assert_eq!(
            offset_and_label("America/New_York", at(2027, 3, 14, 8)).0,
            -4 * 3600
        );
        assert_eq!(
            offset_and_label("Australia/Sydney", at(2027, 1, 4, 12)).0,
            11 * 3600
        );
        assert_eq!(
            offset_and_label("Asia/Kathmandu", at(2027, 1, 4, 12)).0,
            5 * 3600 + 45 * 60
        );
    }

    #[test]
    fn unknown_zones_are_zero_with_their_name() {
        assert_eq!(
            offset_and_label("Mars/Olympus", at(2027, 1, 4, 12)),
            (0, "Mars/Olympus".into())
        );
    }
}
