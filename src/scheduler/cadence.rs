//! Cadences: cron expressions evaluated in a member's local time, with the product's rules
//! for `every_weeks`, working days, holidays and DST (PRODUCT.md, "Cadence rules").
//!
//! Expressions are POSIX 5-field cron (optionally with a leading seconds field). The `cron`
//! crate parses them into sets, but it numbers weekdays 1 = Sunday, so the day-of-week field
//! is first rewritten to explicit day names. Evaluation walks local calendar dates itself:
//! the crate's own iterator skips times in a DST gap and fires twice in an overlap, which is
//! exactly what the product must not do.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use cron::TimeUnitSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CadenceError(String);

const DOW_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// A parsed cron cadence.
#[derive(Clone)]
pub struct Cadence {
    source: String,
    schedule: cron::Schedule,
    dom_restricted: bool,
    dow_restricted: bool,
}

impl fmt::Debug for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cadence({:?})", self.source)
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Cadence {
    type Err = CadenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cadence::parse(s)
    }
}

/// Rewrites a POSIX day-of-week field (0 or 7 = Sunday) into an explicit list of names.
fn normalise_dow(field: &str) -> Result<String, CadenceError> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let number = |s: &str| -> Result<usize, CadenceError> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = DOW_NAMES.iter().position(|n| *n == upper) {
            return Ok(i);
        }
        match s.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n % 7),
            Ok(n) => Err(CadenceError(format!(
                "day-of-week field '{n}' is out of range 0-7"
            ))),
            Err(_) => Err(CadenceError(format!(
                "day-of-week field '{s}' is not a day (0-7 or SUN-SAT)"
            ))),
        }
    };
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: usize = s.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    CadenceError(format!("day-of-week step '{s}' must be a positive number"))
                })?;
                (r, step)
            }
            None => (item, 1),
        };
        // POSIX numbers: 0..=6, with 7 also Sunday; a range may end at 7 (5-7 = FRI,SAT,SUN).
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let lo = number(a)?;
            let hi_raw = b.to_ascii_uppercase();
            let hi = if hi_raw == "7" || (hi_raw == "SUN" && lo > 0) {
                7
            } else {
                number(b)?
            };
            if hi < lo {
                return Err(CadenceError(format!(
                    "day-of-week range '{range}' runs backwards"
                )));
            }
            (lo, hi)
        } else {
            let d = number(range)?;
            (d, if item.contains('/') { 6 } else { d })
        };
        let mut d = lo;
        while d <= hi {
            days.insert(d % 7);
            d += step;
        }
    }
    if days.is_empty() {
        return Err(CadenceError("day-of-week field selects no day".into()));
    }
    Ok(days
        .iter()
        .map(|d| DOW_NAMES[*d])
        .collect::<Vec<_>>()
        .join(","))
}

impl Cadence {
    pub fn parse(expr: &str) -> Result<Cadence, CadenceError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(CadenceError(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {n}"
                )))
            }
        };
        // Name the field a range error sits in, before the crate gives its generic message.
        let limits = [(0u32, 59u32), (0, 23), (1, 31), (1, 12)];
        for (i, field) in rest[..4].iter().enumerate() {
            for part in field.split(',') {
                let range = part.split('/').next().unwrap_or("");
                for value in range.split('-') {
                    if let Ok(v) = value.parse::<u32>() {
                        let (lo, hi) = limits[i];
                        if v < lo || v > hi {
                            return Err(CadenceError(format!(
                                "{} field '{v}' is out of range {lo}-{hi}",
                                FIELD_NAMES[i]
                            )));
                        }
                    }
                }
            }
        }
        let dow = normalise_dow(rest[4])?;
        let normalised = format!(
            "{seconds} {} {} {} {} {dow}",
            rest[0], rest[1], rest[2], rest[3]
        );
        let schedule = cron::Schedule::from_str(&normalised)
            .map_err(|e| CadenceError(format!("cannot parse '{expr}': {e}")))?;
        let restricted = |f: &str| f != "*" && f != "?";
        Ok(Cadence {
            source: expr.trim().to_string(),
            schedule,
            dom_restricted: restricted(rest[2]),
            dow_restricted: restricted(rest[4]),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Does the cadence fire on `date` at all (month and day rules, Vixie-style OR when both
    /// day fields are restricted)?
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if !self.schedule.months().includes(date.month()) {
            return false;
        }
        let dom = self.schedule.days_of_month().includes(date.day());
        // The crate numbers Sunday 1 … Saturday 7.
        let dow = self
            .schedule
            .days_of_week()
            .includes(date.weekday().num_days_from_sunday() + 1);
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// Local wall-clock times this cadence fires at on `date`, ascending.
    pub fn times_on(&self, date: NaiveDate) -> Vec<NaiveDateTime> {
        if !self.matches_date(date) {
            return Vec::new();
        }
        let mut times = Vec::new();
        for h in (0..24).filter(|h| self.schedule.hours().includes(*h)) {
            for m in (0..60).filter(|m| self.schedule.minutes().includes(*m)) {
                for s in (0..60).filter(|s| self.schedule.seconds().includes(*s)) {
                    if let Some(t) = NaiveTime::from_hms_opt(h, m, s) {
                        times.push(date.and_time(t));
                    }
                }
            }
        }
        times
    }
}

impl<'de> serde::Deserialize<'de> for Cadence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cadence::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What happens to a firing on a non-working day or holiday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonWorkingDayPolicy {
    NextWorkingDay,
    Skip,
}

/// A set of weekdays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn mon_to_fri() -> Self {
        WeekdaySet(0b0001_1111)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// From names like `["MON", "tue", "Wednesday"]`; an empty list is an error (nobody
    /// could ever be asked anything).
    pub fn parse_names(names: &[String]) -> Result<Self, CadenceError> {
        let mut bits = 0u8;
        for name in names {
            let day: Weekday = name
                .trim()
                .parse()
                .map_err(|_| CadenceError(format!("'{name}' is not a day (MON, TUE, … SUN)")))?;
            bits |= 1 << day.num_days_from_monday();
        }
        if bits == 0 {
            return Err(CadenceError("at least one working day is needed".into()));
        }
        Ok(WeekdaySet(bits))
    }
}

/// Everything that decides when a survey fires for one member.
pub struct ScheduleRules<'a> {
    pub cadence: &'a Cadence,
    pub every_weeks: u32,
    pub start_date: NaiveDate,
    pub working_days: WeekdaySet,
    pub holidays: &'a BTreeSet<NaiveDate>,
    pub non_working_day: NonWorkingDayPolicy,
}

impl ScheduleRules<'_> {
    fn is_working(&self, date: NaiveDate) -> bool {
        self.working_days.contains(date.weekday()) && !self.holidays.contains(&date)
    }

    fn in_active_week(&self, date: NaiveDate) -> bool {
        let n = i64::from(self.every_weeks.max(1));
        let monday =
            |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
        let weeks = (monday(date) - monday(self.start_date)).num_days() / 7;
        weeks.rem_euclid(n) == 0
    }

    /// The local date a firing nominally on `date` actually happens, if at all.
    fn effective_date(&self, date: NaiveDate) -> Option<NaiveDate> {
        if self.is_working(date) {
            return Some(date);
        }
        match self.non_working_day {
            NonWorkingDayPolicy::Skip => None,
            NonWorkingDayPolicy::NextWorkingDay => {
                let mut d = date;
                for _ in 0..366 {
                    d = d.succ_opt()?;
                    if self.is_working(d) {
                        return Some(d);
                    }
                }
                None
            }
        }
    }
}

/// One firing for one member.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The cron's own local time before any move: identifies the period (round) across
    /// members and zones.
    pub nominal: NaiveDateTime,
    /// Where it actually fires, in the member's zone, after the working-day move and DST.
    pub local: DateTime<Tz>,
    pub utc: DateTime<Utc>,
}

impl Firing {
    pub fn period_key(&self) -> String {
        self.nominal.format("%Y-%m-%dT%H:%M").to_string()
    }

    fn moved(&self) -> bool {
        self.local.date_naive() != self.nominal.date()
    }
}

/// The DST rule: a local time inside a spring-forward gap resolves to the first valid minute
/// after the gap; a time that happens twice resolves to its first occurrence.
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    let mut candidate = naive;
    // Gaps are at most a few hours long; a day covers every zone's history.
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t,
            LocalResult::Ambiguous(first, _) => return first,
            LocalResult::None => {
                let next = candidate + Duration::minutes(1);
                // Land on the whole minute after the gap, not on a stray second.
                candidate = next.with_second(0).unwrap_or(next);
            }
        }
    }
    // Unreachable for real zones; fall back to reading the time as UTC.
    tz.from_utc_datetime(&naive)
}

use chrono::Timelike;

/// All firings whose UTC instant lies in [from, to), ordered by UTC. Pure: no clock inside.
///
/// When a moved firing (non-working day → next working day) lands on the same local time as
/// another firing, one is kept: the unmoved one, else the earliest nominal.
pub fn firings_between(
    rules: &ScheduleRules,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Firing> {
    if from >= to || rules.working_days.is_empty() {
        return Vec::new();
    }
    // Nominal dates up to five weeks back can move forward into the window (holidays).
    let first = from.with_timezone(&tz).date_naive() - Duration::days(35);
    let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
    let mut by_local: BTreeMap<NaiveDateTime, Firing> = BTreeMap::new();
    let mut date = first.max(rules.start_date);
    while date <= last {
        if rules.in_active_week(date) {
            for nominal in rules.cadence.times_on(date) {
                let Some(target) = rules.effective_date(date) else {
                    continue;
                };
                let local_naive = target.and_time(nominal.time());
                let local = resolve_local(tz, local_naive);
                let firing = Firing {
                    nominal,
                    utc: local.with_timezone(&Utc),
                    local,
                };
                match by_local.get(&local_naive) {
                    Some(kept)
                        if !kept.moved() || kept.nominal <= firing.nominal && firing.moved() => {}
                    _ => {
                        by_local.insert(local_naive, firing);
                    }
                }
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    let mut firings: Vec<Firing> = by_local
        .into_values()
        .filter(|f| f.utc >= from && f.utc < to)
        .collect();
    firings.sort_by_key(|f| f.utc);
    // Two local times can map to one instant only across a DST overlap; keep one.
    firings.dedup_by_key(|f| f.utc);
    firings
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rules<'a>(c: &'a Cadence, holidays: &'a BTreeSet<NaiveDate>) -> ScheduleRules<'a> {
        ScheduleRules {
            cadence: c,
            every_weeks: 1,
            start_date: date(2027, 1, 4),
            working_days: WeekdaySet::mon_to_fri(),
            holidays,
            non_working_day: NonWorkingDayPolicy::NextWorkingDay,
        }
    }

    fn weekdays_of(expr: &str, from: NaiveDate, days: i64) -> Vec<Weekday> {
        let c = Cadence::parse(expr).unwrap();
        (0..days)
            .map(|i| from + Duration::days(i))
            .filter(|d| !c.times_on(*d).is_empty())
            .map(|d| d.weekday())
            .collect()
    }

    #[test]
    fn weekday_numbers_are_posix() {
        let monday = date(2027, 1, 4);
        assert_eq!(weekdays_of("0 9 * * MON", monday, 7), vec![Weekday::Mon]);
        assert_eq!(
            weekdays_of("0 9 * * 1", monday, 7),
            vec![Weekday::Mon],
            "1 is Monday, not Sunday"
        );
        assert_eq!(weekdays_of("0 9 * * 0", monday, 7), vec![Weekday::Sun]);
        assert_eq!(weekdays_of("0 9 * * 7", monday, 7), vec![Weekday::Sun]);
        assert_eq!(weekdays_of("0 9 * * 1-5", monday, 7).len(), 5);
        assert_eq!(
            weekdays_of("0 9 * * 5-7", monday, 7),
            vec![Weekday::Fri, Weekday::Sat, Weekday::Sun]
        );
        assert_eq!(
            weekdays_of("30 8 * * SUN-THU", monday, 7),
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Sun
            ]
        );
        assert_eq!(
            weekdays_of("0 9 * * */2", monday, 7),
            vec![Weekday::Tue, Weekday::Thu, Weekday::Sat, Weekday::Sun]
        );
        assert_eq!(
            weekdays_of("0 0 9 * * MON", monday, 7),
            vec![Weekday::Mon],
            "leading seconds field"
        );
        assert_eq!(
            weekdays_of("0 9 * * mon,fri", monday, 7),
            vec![Weekday::Mon, Weekday::Fri]
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let err = |e: &str| Cadence::parse(e).unwrap_err().to_string();
        assert!(err("61 * * * *").contains("minute field '61' is out of range 0-59"));
        assert!(err("0 25 * * *").contains("hour field '25' is out of range 0-23"));
        assert!(err("0 9 * *").contains("expected 5 fields"));
        assert!(err("0 9 * * FOO").contains("'FOO' is not a day"));
        assert!(err("0 9 * * 8").contains("out of range 0-7"));
        assert!(err("0 9 32 * *").contains("day-of-month field '32'"));
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        let c = Cadence::parse("0 9 1 * MON").unwrap();
        assert!(
            !c.times_on(date(2027, 3, 1)).is_empty(),
            "the 1st (a Monday too)"
        );
        assert!(
            !c.times_on(date(2027, 4, 1)).is_empty(),
            "the 1st, a Thursday"
        );
        assert!(!c.times_on(date(2027, 4, 5)).is_empty(), "a Monday");
        assert!(c.times_on(date(2027, 4, 6)).is_empty());
        // One restricted field: only it decides.
        let c = Cadence::parse("0 9 1 * *").unwrap();
        assert!(c.times_on(date(2027, 4, 5)).is_empty());
    }

    #[test]
    fn monday_nine_local_across_both_hemispheres_dst_changes() {
        let c = Cadence::parse("0 9 * * MON").unwrap();
        let none = BTreeSet::new();
        let r = rules(&c, &none);
        let from = utc(2027, 2, 28, 0, 0);
        let to = utc(2027, 4, 20, 0, 0);
        let expect = |tz: Tz, instants: &[DateTime<Utc>]| {
            let got: Vec<_> = firings_between(&r, tz, from, to)
                .iter()
                .map(|f| f.utc)
                .collect();
            assert_eq!(
                got.len(),
                8,
                "{tz}: one per week (8 Mondays), none twice, none skipped: {got:?}"
            );
            for f in firings_between(&r, tz, from, to) {
                assert_eq!(f.local.format("%a %H:%M").to_string(), "Mon 09:00", "{tz}");
            }
            for i in instants {
                assert!(got.contains(i), "{tz}: expected {i} in {got:?}");
            }
        };
        // US DST starts 2027-03-14.
        expect(
            chrono_tz::America::Los_Angeles,
            &[utc(2027, 3, 8, 17, 0), utc(2027, 3, 15, 16, 0)],
        );
        // EU DST starts 2027-03-28.
        expect(
            chrono_tz::Europe::London,
            &[utc(2027, 3, 22, 9, 0), utc(2027, 3, 29, 8, 0)],
        );
        expect(
            chrono_tz::Asia::Kolkata,
            &[utc(2027, 3, 1, 3, 30), utc(2027, 4, 5, 3, 30)],
        );
        expect(
            chrono_tz::Asia::Kathmandu,
            &[utc(2027, 3, 1, 3, 15), utc(2027, 4, 5, 3, 15)],
        );
        // New Zealand DST ends 2027-04-04 (UTC+13 → UTC+12).
        expect(
            chrono_tz::Pacific::Auckland,
            &[utc(2027, 3, 28, 20, 0), utc(2027, 4, 4, 21, 0)],
        );
    }

    #[test]
    fn a_time_in_the_gap_fires_once_after_it_and_an_overlap_fires_once() {
        let none = BTreeSet::new();
        let gap = Cadence::parse("30 2 * * *").unwrap();
        let mut r = rules(&gap, &none);
        r.working_days = WeekdaySet::parse_names(
            &["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"].map(String::from),
        )
        .unwrap();
        let ny = chrono_tz::America::New_York;
        let f = firings_between(&r, ny, utc(2027, 3, 14, 0, 0), utc(2027, 3, 15, 0, 0));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].utc,
            utc(2027, 3, 14, 7, 0),
            "02:30 does not exist: 03:00 EDT"
        );
        assert_eq!(f[0].local.format("%H:%M").to_string(), "03:00");

        let overlap = Cadence::parse("30 1 * * *").unwrap();
        let mut r = rules(&overlap, &none);
        r.working_days = WeekdaySet::parse_names(&["SUN".to_string(), "MON".to_string()]).unwrap();
        let f = firings_between(&r, ny, utc(2027, 11, 7, 0, 0), utc(2027, 11, 8, 0, 0));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].utc,
            utc(2027, 11, 7, 5, 30),
            "the first 01:30, still EDT"
        );
    }

    #[test]
    fn half_hour_dst_shift_lands_on_the_first_valid_minute() {
        // Lord Howe Island moves from +10:30 to +11 at 02:00 on the first Sunday of October.
        let t = resolve_local(
            chrono_tz::Australia::Lord_Howe,
            date(2027, 10, 3).and_hms_opt(2, 15, 0).unwrap(),
        );
        assert_eq!(t.format("%H:%M").to_string(), "02:30");
    }

    #[test]
    fn every_two_weeks_counts_from_the_start_week() {
        let c = Cadence::parse("0 9 * * MON").unwrap();
        let none = BTreeSet::new();
        let mut r = rules(&c, &none);
        r.every_weeks = 2;
        r.start_date = date(2027, 1, 6); // a Wednesday: its ISO week starts Monday 4 Jan
        let f = firings_between(
            &r,
            chrono_tz::Europe::Berlin,
            utc(2026, 12, 1, 0, 0),
            utc(2027, 2, 1, 0, 0),
        );
        let dates: Vec<_> = f.iter().map(|f| f.local.date_naive()).collect();
        // 4 Jan is before the start date itself, so the first is 18 Jan.
        assert_eq!(dates, vec![date(2027, 1, 18)]);
        let f = firings_between(
            &r,
            chrono_tz::Europe::Berlin,
            utc(2027, 1, 1, 0, 0),
            utc(2027, 3, 1, 0, 0),
        );
        let dates: Vec<_> = f.iter().map(|f| f.local.date_naive()).collect();
        assert_eq!(
            dates,
            vec![date(2027, 1, 18), date(2027, 2, 1), date(2027, 2, 15)]
        );
    }

    #[test]
    fn working_days_holidays_and_moves() {
        let holidays: BTreeSet<_> = [date(2027, 1, 11)].into_iter().collect();
        let monday = Cadence::parse("0 9 * * MON").unwrap();
        let mut r = rules(&monday, &holidays);
        let tz = chrono_tz::Europe::Berlin;
        let f = firings_between(&r, tz, utc(2027, 1, 10, 0, 0), utc(2027, 1, 17, 0, 0));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].local.date_naive(),
            date(2027, 1, 12),
            "holiday Monday moves to Tuesday"
        );
        assert_eq!(
            f[0].period_key(),
            "2027-01-11T09:00",
            "the period stays the nominal one"
        );
        r.non_working_day = NonWorkingDayPolicy::Skip;
        assert!(firings_between(&r, tz, utc(2027, 1, 10, 0, 0), utc(2027, 1, 17, 0, 0)).is_empty());

        // A Sunday–Thursday week: a daily cadence fires on those five days only, or moves.
        let daily = Cadence::parse("0 9 * * *").unwrap();
        let none = BTreeSet::new();
        let mut r = rules(&daily, &none);
        r.working_days =
            WeekdaySet::parse_names(&["SUN", "MON", "TUE", "WED", "THU"].map(String::from))
                .unwrap();
        r.non_working_day = NonWorkingDayPolicy::Skip;
        let f = firings_between(
            &r,
            chrono_tz::Asia::Jerusalem,
            utc(2027, 1, 10, 0, 0),
            utc(2027, 1, 17, 0, 0),
        );
        let days: Vec<_> = f.iter().map(|f| f.local.weekday()).collect();
        assert_eq!(
            days,
            vec![
                Weekday::Sun,
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu
            ]
        );

        // Moved Friday and Saturday firings collide with Sunday's own: one firing per day.
        r.non_working_day = NonWorkingDayPolicy::NextWorkingDay;
        let f = firings_between(
            &r,
            chrono_tz::Asia::Jerusalem,
            utc(2027, 1, 10, 0, 0),
            utc(2027, 1, 24, 0, 0),
        );
        let mut per_day: Vec<_> = f.iter().map(|f| f.local.date_naive()).collect();
        let n = per_day.len();
        per_day.dedup();
        assert_eq!(per_day.len(), n, "never two pulses at one time");
        assert!(f
            .iter()
            .all(|f| f.local.weekday() != Weekday::Fri && f.local.weekday() != Weekday::Sat));

        // A Saturday cadence with Monday–Friday working days fires on Monday.
        let saturday = Cadence::parse("0 10 * * SAT").unwrap();
        let r = rules(&saturday, &none);
        let f = firings_between(&r, tz, utc(2027, 1, 8, 0, 0), utc(2027, 1, 12, 0, 0));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].local.weekday(), Weekday::Mon);
        assert_eq!(f[0].period_key(), "2027-01-09T10:00");
    }

    #[test]
    fn the_interval_is_half_open_and_ordered() {
        let c = Cadence::parse("0 9 * * MON-FRI").unwrap();
        let none = BTreeSet::new();
        let r = rules(&c, &none);
        let at = utc(2027, 1, 4, 8, 0); // 09:00 Berlin
        let f = firings_between(&r, chrono_tz::Europe::Berlin, at, at + Duration::days(2));
        assert_eq!(f.first().map(|f| f.utc), Some(at), "from is included");
        assert!(
            firings_between(&r, chrono_tz::Europe::Berlin, at - Duration::days(1), at)
                .iter()
                .all(|f| f.utc < at),
            "to is excluded"
        );
        assert!(f.windows(2).all(|w| w[0].utc < w[1].utc));
    }

    #[test]
    fn weekday_sets_reject_nonsense() {
        assert!(WeekdaySet::parse_names(&[]).is_err());
        assert!(WeekdaySet::parse_names(&["FUNDAY".into()]).is_err());
        let s = WeekdaySet::parse_names(&["mon".into(), "Friday".into()]).unwrap();
        assert!(s.contains(Weekday::Mon) && s.contains(Weekday::Fri) && !s.contains(Weekday::Tue));
    }
}
