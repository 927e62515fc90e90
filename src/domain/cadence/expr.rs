//! Cron text → [`Cadence`]: one parser, with messages that name the field, straight to the
//! sets of values each field selects.
//!
//! Why not a cron crate: `cron` wants a leading seconds field, numbers Sunday 1 (POSIX says 0
//! or 7) and its errors do not say which field is wrong, so using it meant validating the
//! whole grammar here and writing it back out for the crate: two parsers. `croner` speaks
//! POSIX, but it accepts extensions the product rejects (`L`, `W`, `#`, a year field,
//! `@nicknames`, a `+` prefix) and its errors do not name fields either, so it would need the
//! same validating pass in front. This module is therefore the one parser: it checks every
//! field and keeps what it selects as a bit set per field ([`Bits`]).
//!
//! The grammar and its meaning are in docs/cadence.md.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Month, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// Why a cadence (or a working-day list) was rejected. `Display` is a sentence meant for the
/// admin who wrote the file: it names the field and the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    #[error(
        "a cadence has 5 fields (minute hour day-of-month month day-of-week), or 6 with a \
         leading seconds field, but '{expr}' has {found}"
    )]
    FieldCount { expr: String, found: usize },
    /// One field is wrong; `problem` completes the sentence "`<field>` field …".
    #[error("{field} field {problem}")]
    Field { field: FieldKind, problem: String },
    #[error("'{0}' is not a day of the week (use MON, TUE, WED, THU, FRI, SAT or SUN)")]
    UnknownWeekday(String),
    #[error("working days must name at least one day, or nobody could ever be asked anything")]
    NoWorkingDays,
}

/// The fields of a cron expression, named as in the error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        })
    }
}

impl FieldKind {
    /// Inclusive bounds of a value written in the field. Day of week allows 7 (= Sunday).
    fn bounds(self) -> (u32, u32) {
        match self {
            FieldKind::Second | FieldKind::Minute => (0, 59),
            FieldKind::Hour => (0, 23),
            FieldKind::DayOfMonth => (1, 31),
            FieldKind::Month => (1, 12),
            FieldKind::DayOfWeek => (0, 7),
        }
    }

    /// What `*` spans. For day of week it is 0-6, so `*/2` is SUN,TUE,THU,SAT as in POSIX
    /// (including 7 would change nothing: 7 is only hit by steps 1 and 7, which hit 0 too).
    fn star_span(self) -> (u32, u32) {
        match self {
            FieldKind::DayOfWeek => (0, 6),
            other => other.bounds(),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            FieldKind::Month => "a number 1-12 or a month name (JAN-DEC)",
            FieldKind::DayOfWeek => "a day (0-7 or SUN-SAT)",
            _ => "a number",
        }
    }

    fn err(self, problem: String) -> CadenceError {
        CadenceError::Field {
            field: self,
            problem,
        }
    }
}

/// One list item of a field: every `step`th value from `lo` to `hi` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    lo: u32,
    hi: u32,
    step: u32,
}

/// Reads one value: digits, or (month, day of week) an English name in any case.
fn value(kind: FieldKind, text: &str) -> Result<u32, CadenceError> {
    let (lo, hi) = kind.bounds();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Over-long digit strings do not fit a u32; they are out of range all the same.
        return match text.parse::<u32>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(kind.err(format!("'{text}' is out of range {lo}-{hi}"))),
        };
    }
    let named = match kind {
        FieldKind::Month => Month::from_str(text).ok().map(|m| m.number_from_month()),
        FieldKind::DayOfWeek => Weekday::from_str(text)
            .ok()
            .map(|d| d.num_days_from_sunday()),
        _ => None,
    };
    named.ok_or_else(|| kind.err(format!("'{text}' is not {}", kind.hint())))
}

/// Parses one field into items, with POSIX meaning and bounds checked.
fn items(kind: FieldKind, field: &str) -> Result<Vec<Item>, CadenceError> {
    let mut out = Vec::new();
    for part in field.split(',') {
        if part.is_empty() {
            return Err(kind.err(format!("'{field}' has an empty list entry")));
        }
        let (base, step) = match part.split_once('/') {
            None => (part, None),
            Some((base, step_text)) => {
                let max_step = kind.bounds().1;
                let step = step_text
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (1..=max_step).contains(s) && !step_text.starts_with('+'))
                    .ok_or_else(|| {
                        kind.err(format!(
                            "step '{step_text}' in '{part}' must be a whole number from 1 to \
                             {max_step}"
                        ))
                    })?;
                (base, Some(step))
            }
        };
        let (lo, hi) = if base == "*" || base == "?" {
            if base == "?" && !matches!(kind, FieldKind::DayOfMonth | FieldKind::DayOfWeek) {
                return Err(kind.err(
                    "uses '?', which only the day-of-month and day-of-week fields accept".into(),
                ));
            }
            kind.star_span()
        } else if let Some((a, b)) = base.split_once('-') {
            let lo = value(kind, a)?;
            // `FRI-SUN` reads the name SUN as 7, the way `5-7` is written with numbers
            // (a numeric `5-0` stays an error: numbers mean what they say).
            let is_name = !b.bytes().all(|c| c.is_ascii_digit());
            let hi = match value(kind, b)? {
                0 if kind == FieldKind::DayOfWeek && lo > 0 && is_name => 7,
                v => v,
            };
            if hi < lo {
                return Err(kind.err(format!(
                    "range '{base}' runs backwards (ranges do not wrap around; use a list \
                     such as '{a}-…,…-{b}')"
                )));
            }
            (lo, hi)
        } else {
            let v = value(kind, base)?;
            // `n/step` runs to the end of the field, as in cronie (day of week: to 7).
            (v, if step.is_some() { kind.bounds().1 } else { v })
        };
        out.push(Item {
            lo,
            hi,
            step: step.unwrap_or(1),
        });
    }
    Ok(out)
}

/// The values one field selects, one bit per value (bit `n` = value `n`; every field's
/// values are below 64). Day of week is stored 0-6 with Sunday 0: a written 7 sets bit 0.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bits(u64);

impl Bits {
    fn of(kind: FieldKind, items: &[Item]) -> Bits {
        let values = items
            .iter()
            .flat_map(|i| (i.lo..=i.hi).step_by(i.step.max(1) as usize));
        Bits(values.fold(0, |bits, v| {
            let v = if kind == FieldKind::DayOfWeek {
                v % 7
            } else {
                v
            };
            bits | 1 << v
        }))
    }

    fn contains(self, v: u32) -> bool {
        v < 64 && self.0 & 1 << v != 0
    }

    /// The values in ascending order.
    fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |v| self.contains(*v))
    }
}

impl fmt::Debug for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Vixie cron's rule: a day field is "unrestricted" when its text starts with `*` (so `*/2`
/// counts as unrestricted too, exactly as in Vixie and cronie); `?` is the Quartz spelling.
fn unrestricted(field: &str) -> bool {
    field.starts_with('*') || field.starts_with('?')
}

/// A parsed cron cadence.
///
/// Standard 5-field `minute hour day-of-month month day-of-week` with POSIX numbering (day of
/// week 0 or 7 = Sunday, 1 = Monday; names `MON`…`SUN`, `JAN`…`DEC` in any case; ranges,
/// lists, steps, `*`, and `?` in the day fields), or 6 fields with a leading seconds field.
/// When both day fields are restricted, a day matches if either matches (Vixie cron);
/// otherwise both must.
///
/// A cadence knows nothing about time zones: it answers "which wall-clock times on this local
/// date?" ([`Cadence::times_on`]); the zone, DST and working-day rules live in
/// [`super::firings_between`].
#[derive(Clone)]
pub struct Cadence {
    source: String,
    second: Bits,
    minute: Bits,
    hour: Bits,
    day_of_month: Bits,
    month: Bits,
    day_of_week: Bits,
    dom_restricted: bool,
    dow_restricted: bool,
}

impl Cadence {
    /// Parses and validates `expr`; see the type's docs for the syntax.
    pub fn parse(expr: &str) -> Result<Cadence, CadenceError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (second, rest) = match fields.as_slice() {
            [m, h, dom, mon, dow] => ("0", [*m, *h, *dom, *mon, *dow]),
            [s, m, h, dom, mon, dow] => (*s, [*m, *h, *dom, *mon, *dow]),
            _ => {
                return Err(CadenceError::FieldCount {
                    expr: expr.trim().to_string(),
                    found: fields.len(),
                })
            }
        };
        let [minute, hour, dom, month, dow] = rest;
        let bits = |kind: FieldKind, text: &str| Ok(Bits::of(kind, &items(kind, text)?));
        Ok(Cadence {
            source: expr.trim().to_string(),
            second: bits(FieldKind::Second, second)?,
            minute: bits(FieldKind::Minute, minute)?,
            hour: bits(FieldKind::Hour, hour)?,
            day_of_month: bits(FieldKind::DayOfMonth, dom)?,
            month: bits(FieldKind::Month, month)?,
            day_of_week: bits(FieldKind::DayOfWeek, dow)?,
            dom_restricted: !unrestricted(dom),
            dow_restricted: !unrestricted(dow),
        })
    }

    /// The expression as written (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Does the cadence fire at all on `date` (month and day rules, with the Vixie OR)?
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if !self.month.contains(date.month()) {
            return false;
        }
        let dom = self.day_of_month.contains(date.day());
        let dow = self
            .day_of_week
            .contains(date.weekday().num_days_from_sunday());
        if self.dom_restricted && self.dow_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// Local wall-clock times (naive) this cadence fires at on `date`, ascending (usually
    /// one). Times that a time zone skips or repeats are still listed: the DST rule is
    /// applied later, by [`super::resolve_local`].
    pub fn times_on(&self, date: NaiveDate) -> Vec<NaiveDateTime> {
        if !self.matches_date(date) {
            return Vec::new();
        }
        // Each set iterates in ascending order, so the nested loops produce sorted times.
        let mut times = Vec::new();
        for h in self.hour.iter() {
            for m in self.minute.iter() {
                for s in self.second.iter() {
                    if let Some(t) = NaiveTime::from_hms_opt(h, m, s) {
                        times.push(date.and_time(t));
                    }
                }
            }
        }
        times
    }
}

impl fmt::Debug for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cadence")
            .field("source", &self.source)
            .field("second", &self.second)
            .field("minute", &self.minute)
            .field("hour", &self.hour)
            .field("day_of_month", &self.day_of_month)
            .field("month", &self.month)
            .field("day_of_week", &self.day_of_week)
            .field("dom_restricted", &self.dom_restricted)
            .field("dow_restricted", &self.dow_restricted)
            .finish()
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two cadences are equal when they were written the same way.
impl PartialEq for Cadence {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Cadence {}

impl FromStr for Cadence {
    type Err = CadenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cadence::parse(s)
    }
}

impl TryFrom<&str> for Cadence {
    type Error = CadenceError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Cadence::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Cadence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Cadence::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Cadence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    /// Weekdays on which `expr` fires during the week starting Monday 2027-01-04.
    fn days(expr: &str) -> Vec<Weekday> {
        let c = Cadence::parse(expr).expect("test expression parses");
        (0..7)
            .map(|i| date(2027, 1, 4) + Duration::days(i))
            .filter(|d| !c.times_on(*d).is_empty())
            .map(|d| d.weekday())
            .collect()
    }

    fn err(expr: &str) -> String {
        match Cadence::parse(expr) {
            Ok(c) => panic!("'{expr}' should be rejected, parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    use Weekday::*;

    #[test]
    fn weekday_numbers_are_posix_not_the_cron_crates() {
        assert_eq!(days("0 9 * * MON"), [Mon]);
        assert_eq!(days("0 9 * * 1"), [Mon], "1 is Monday, not Sunday");
        assert_eq!(days("0 9 * * 0"), [Sun]);
        assert_eq!(days("0 9 * * 7"), [Sun]);
        for (n, day) in [(1, Mon), (2, Tue), (3, Wed), (4, Thu), (5, Fri), (6, Sat)] {
            assert_eq!(days(&format!("0 9 * * {n}")), [day], "dow {n}");
        }
        assert_eq!(days("0 9 * * 1-5"), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(days("0 9 * * mon-fri"), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(days("30 8 * * SUN-THU"), [Mon, Tue, Wed, Thu, Sun]);
        assert_eq!(days("0 9 * * 0,6"), [Sat, Sun]);
        assert_eq!(days("0 9 * * 5-7"), [Fri, Sat, Sun]);
        assert_eq!(days("0 9 * * FRI-SUN"), [Fri, Sat, Sun]);
        assert_eq!(days("0 9 * * */2"), [Tue, Thu, Sat, Sun], "0,2,4,6");
        assert_eq!(days("0 9 * * 1-5/2"), [Mon, Wed, Fri]);
        assert_eq!(days("0 9 * * 1/2"), [Mon, Wed, Fri, Sun], "1,3,5,7");
        assert_eq!(days("0 9 * * Monday,friday"), [Mon, Fri]);
        assert_eq!(days("0 9 ? * WED"), [Wed]);
        assert_eq!(days("0 0 9 * * MON"), [Mon], "leading seconds field");
    }

    #[test]
    fn times_on_lists_every_time_of_the_day_in_order() {
        let c = Cadence::parse("0,30 9-10 * * *").expect("parses");
        let d = date(2027, 1, 4);
        let got: Vec<String> = c
            .times_on(d)
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(got, ["09:00", "09:30", "10:00", "10:30"]);

        let c = Cadence::parse("15 0 9 * * *").expect("parses");
        assert_eq!(c.times_on(d), [d.and_hms_opt(9, 0, 15).expect("valid")]);

        let c = Cadence::parse("*/20 8 * * *").expect("parses");
        assert_eq!(c.times_on(d).len(), 3);
    }

    #[test]
    fn months_by_number_or_name() {
        let c = Cadence::parse("0 9 1 jan,JUL *").expect("parses");
        assert!(!c.times_on(date(2027, 1, 1)).is_empty());
        assert!(!c.times_on(date(2027, 7, 1)).is_empty());
        assert!(c.times_on(date(2027, 2, 1)).is_empty());
        let c = Cadence::parse("0 9 1 MAR-5 *").expect("mixed name and number");
        assert!(!c.times_on(date(2027, 4, 1)).is_empty());
        assert!(c.times_on(date(2027, 6, 1)).is_empty());
    }

    #[test]
    fn both_day_fields_restricted_means_either_matches() {
        let c = Cadence::parse("0 9 1 * MON").expect("parses");
        assert!(
            !c.times_on(date(2027, 4, 1)).is_empty(),
            "the 1st, a Thursday"
        );
        assert!(!c.times_on(date(2027, 4, 5)).is_empty(), "a Monday");
        assert!(
            !c.times_on(date(2027, 3, 1)).is_empty(),
            "the 1st and a Monday"
        );
        assert!(c.times_on(date(2027, 4, 6)).is_empty(), "neither");
        let fired = (0..30)
            .map(|i| date(2027, 4, 1) + Duration::days(i))
            .filter(|d| !c.times_on(*d).is_empty())
            .count();
        assert_eq!(fired, 1 + 4, "April 1st plus four Mondays");

        // Only one day field restricted: it alone decides.
        assert!(Cadence::parse("0 9 1 * *")
            .expect("parses")
            .times_on(date(2027, 4, 5))
            .is_empty());
        assert!(Cadence::parse("0 9 * * MON")
            .expect("parses")
            .times_on(date(2027, 4, 1))
            .is_empty());
        // Vixie: a field starting with '*' is unrestricted, so `*/2` ANDs with the weekday.
        let c = Cadence::parse("0 9 */2 * MON").expect("parses");
        assert!(!c.times_on(date(2027, 4, 5)).is_empty(), "odd day, Monday");
        assert!(c.times_on(date(2027, 4, 12)).is_empty(), "even day, Monday");
        assert!(
            c.times_on(date(2027, 4, 7)).is_empty(),
            "odd day, Wednesday"
        );
    }

    #[test]
    fn bad_expressions_say_which_field_and_why() {
        assert_eq!(err("61 * * * *"), "minute field '61' is out of range 0-59");
        assert_eq!(err("0 25 * * *"), "hour field '25' is out of range 0-23");
        assert_eq!(
            err("0 9 * * 8"),
            "day-of-week field '8' is out of range 0-7"
        );
        assert_eq!(
            err("0 9 * * FOO"),
            "day-of-week field 'FOO' is not a day (0-7 or SUN-SAT)"
        );
        assert_eq!(
            err("0 9 * *"),
            "a cadence has 5 fields (minute hour day-of-month month day-of-week), or 6 with a \
             leading seconds field, but '0 9 * *' has 4"
        );
        assert!(err("").contains("has 0"));
        assert!(err("0 0 0 9 * * MON").contains("has 7"));
        assert_eq!(
            err("0 9 32 * *"),
            "day-of-month field '32' is out of range 1-31"
        );
        assert_eq!(
            err("0 9 0 * *"),
            "day-of-month field '0' is out of range 1-31"
        );
        assert_eq!(err("0 9 * 13 *"), "month field '13' is out of range 1-12");
        assert!(err("0 9 * FOO *").starts_with("month field 'FOO' is not a number 1-12"));
        assert_eq!(
            err("60 0 9 * * *"),
            "second field '60' is out of range 0-59"
        );
        assert!(err("0 9 * * FRI-MON").contains("range 'FRI-MON' runs backwards"));
        assert!(err("0 9 * * 5-0").contains("range '5-0' runs backwards"));
        assert!(err("0 17-9 * * *").starts_with("hour field range '17-9' runs backwards"));
        assert!(err("*/0 * * * *").contains("step '0' in '*/0' must be a whole number"));
        assert!(err("*/60 * * * *").contains("from 1 to 59"));
        assert!(err("0 9 1,,2 * *").contains("empty list entry"));
        assert!(err("? 9 * * *").contains("only the day-of-month and day-of-week"));
        assert!(err("0 9 L * *").starts_with("day-of-month field 'L' is not a number"));
        assert!(err("0 9 * * 1#2").starts_with("day-of-week field '1#2'"));
        assert!(err("+5 9 * * *").starts_with("minute field '+5'"));
        assert!(err("0 99999999999 * * *").contains("out of range 0-23"));
        assert!(err("0 9 * * -").starts_with("day-of-week field '' is not a day"));
    }

    #[test]
    fn text_round_trips() {
        let c: Cadence = "  0 10 * * MON ".parse().expect("parses");
        assert_eq!(c.source(), "0 10 * * MON");
        assert_eq!(c.to_string(), "0 10 * * MON");
        assert_eq!(
            format!("{c:?}"),
            "Cadence { source: \"0 10 * * MON\", second: {0}, minute: {0}, hour: {10}, \
             day_of_month: {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, \
             20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}, month: {1, 2, 3, 4, 5, 6, 7, 8, \
             9, 10, 11, 12}, day_of_week: {1}, dom_restricted: false, dow_restricted: true }"
        );
        let json = serde_json::to_string(&c).expect("serialises");
        assert_eq!(json, "\"0 10 * * MON\"");
        let back: Cadence = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, c);
        let bad = serde_json::from_str::<Cadence>("\"0 9 * * 8\"").expect_err("rejected");
        assert!(bad.to_string().contains("out of range 0-7"));
    }
}
