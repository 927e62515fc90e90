//! Working days: chrono's [`chrono::WeekdaySet`], read from and written as the config
//! file's day names.
//!
//! The set itself is chrono's; this wrapper only adds what the product needs on top: parsing
//! names (an unknown name or an empty list is an error), the Monday-to-Friday default, and the
//! `["MON", "TUE", …]` spelling used in config files, the database and JSON.

use std::fmt;

use chrono::Weekday;

use super::expr::CadenceError;

/// A set of working days (possibly empty: the schedule then fires nowhere, it does not loop).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkingDays(chrono::WeekdaySet);

impl WorkingDays {
    /// The product default: Monday to Friday.
    pub fn mon_to_fri() -> Self {
        use Weekday::*;
        WorkingDays(chrono::WeekdaySet::from_array([Mon, Tue, Wed, Thu, Fri]))
    }

    pub fn all() -> Self {
        WorkingDays(chrono::WeekdaySet::ALL)
    }

    /// Built from days; may be empty.
    pub fn from_days(days: impl IntoIterator<Item = Weekday>) -> Self {
        WorkingDays(days.into_iter().collect())
    }

    pub fn contains(&self, day: Weekday) -> bool {
        self.0.contains(day)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The days in the set, Monday first.
    pub fn iter(self) -> impl Iterator<Item = Weekday> {
        self.0.iter(Weekday::Mon)
    }

    /// chrono's set, for set operations.
    pub fn as_set(self) -> chrono::WeekdaySet {
        self.0
    }

    /// From names such as `["MON", "tue", "Wednesday"]` (three-letter or full English names,
    /// any case, surrounding spaces ignored). An unknown name is an error rather than being
    /// ignored, and so is an empty list: a program where nobody ever works could never ask
    /// anything.
    pub fn parse_names(names: &[String]) -> Result<Self, CadenceError> {
        let mut set = chrono::WeekdaySet::EMPTY;
        for name in names {
            let name = name.trim();
            let day = name
                .parse::<Weekday>()
                .map_err(|_| CadenceError::UnknownWeekday(name.to_string()))?;
            set.insert(day);
        }
        if set.is_empty() {
            return Err(CadenceError::NoWorkingDays);
        }
        Ok(WorkingDays(set))
    }

    /// Upper-case three-letter names, Monday first (the config file's spelling).
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(day_name).collect()
    }
}

impl From<chrono::WeekdaySet> for WorkingDays {
    fn from(set: chrono::WeekdaySet) -> Self {
        WorkingDays(set)
    }
}

/// The config file's name of a day: `MON` … `SUN`.
fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MON",
        Weekday::Tue => "TUE",
        Weekday::Wed => "WED",
        Weekday::Thu => "THU",
        Weekday::Fri => "FRI",
        Weekday::Sat => "SAT",
        Weekday::Sun => "SUN",
    }
}

impl fmt::Debug for WorkingDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkingDays({})", self.names().join(","))
    }
}

impl serde::Serialize for WorkingDays {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> serde::Deserialize<'de> for WorkingDays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        WorkingDays::parse_names(&names).map_err(serde::de::Error::custom)
    }
}
