//! Cadences: when a survey fires for one member, as exact instants, by the rules in
//! docs/cadence.md: a POSIX cron evaluated on the member's local wall clock, `every_weeks`
//! counted in ISO weeks from the program's start date, working days and holidays (move to the
//! next working day, or skip), then the DST rule (a time in a gap fires at the end of the gap;
//! a repeated time fires once, at its first occurrence).
//!
//! Tour:
//! - `expr`: cron text → [`Cadence`], the one cron parser: it names the bad field in its
//!   errors and keeps each field's values as a bit set.
//! - `rules`: [`ScheduleRules`] and [`firings_between`], the pure function the scheduler
//!   tick and the preview both call. Evaluation walks local calendar dates, so a time in a
//!   DST gap or overlap is decided by the product's rule, not by an iterator's.
//! - `dst`: [`resolve_local`], the DST rule on its own.
//! - `weekdays`: [`WorkingDays`], chrono's `WeekdaySet` with the config file's day names.
//!
//! Nothing here reads a clock or does I/O; tests use fixed instants.

mod dst;
mod expr;
mod rules;
mod spacing;
mod weekdays;

pub use dst::resolve_local;
pub use expr::{Cadence, CadenceError, FieldKind};
pub use rules::{firings_between, Firing, NonWorkingDayPolicy, ScheduleRules};
pub use spacing::describe_gap;
pub use weekdays::WorkingDays;

#[cfg(test)]
mod tests {
    //! End-to-end: cadence + rules + zone → instants.

    use super::*;
    use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc, Weekday};
    use chrono_tz::Tz;
    use chrono_tz::{America, Asia, Australia, Europe, Pacific};
    use std::collections::BTreeSet;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid test instant")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn cadence(expr: &str) -> Cadence {
        Cadence::parse(expr).expect("test cadence parses")
    }

    fn rules<'a>(c: &'a Cadence, holidays: &'a BTreeSet<NaiveDate>) -> ScheduleRules<'a> {
        ScheduleRules {
            cadence: c,
            every_weeks: 1,
            start_date: date(2027, 1, 4),
            working_days: WorkingDays::mon_to_fri(),
            holidays,
            non_working_day: NonWorkingDayPolicy::NextWorkingDay,
        }
    }

    fn names(days: &[&str]) -> Vec<String> {
        days.iter().map(|d| d.to_string()).collect()
    }

    fn instants(f: &[Firing]) -> Vec<DateTime<Utc>> {
        f.iter().map(|f| f.utc).collect()
    }

    fn local_dates(f: &[Firing]) -> Vec<NaiveDate> {
        f.iter().map(|f| f.local.date_naive()).collect()
    }

    /// The local date on which `tz`'s UTC offset at local noon changes, between two dates.
    fn offset_change(tz: Tz, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let noon_offset = |d: NaiveDate| {
            let t = d.and_hms_opt(12, 0, 0).expect("noon");
            tz.from_local_datetime(&t)
                .earliest()
                .map(|t| t.offset().fix().local_minus_utc())
        };
        from.iter_days()
            .take_while(|d| *d < to)
            .filter(|d| {
                d.succ_opt()
                    .is_some_and(|n| noon_offset(*d) != noon_offset(n))
            })
            .filter_map(|d| d.succ_opt())
            .collect()
    }

    #[test]
    fn the_dst_dates_used_below_are_chrono_tzs() {
        let (mar, may) = (date(2027, 3, 1), date(2027, 5, 1));
        assert_eq!(
            offset_change(America::Los_Angeles, mar, may),
            [date(2027, 3, 14)]
        );
        assert_eq!(offset_change(Europe::London, mar, may), [date(2027, 3, 28)]);
        assert_eq!(
            offset_change(Pacific::Auckland, mar, may),
            [date(2027, 4, 4)]
        );
        assert!(offset_change(Asia::Kolkata, mar, may).is_empty());
        assert!(offset_change(Asia::Kathmandu, mar, may).is_empty());
        let (nov, dec) = (date(2027, 11, 1), date(2027, 12, 1));
        assert_eq!(
            offset_change(America::New_York, nov, dec),
            [date(2027, 11, 7)]
        );
    }

    #[test]
    fn monday_nine_local_in_five_zones_across_dst_changes() {
        let c = cadence("0 9 * * MON");
        let none = BTreeSet::new();
        let r = rules(&c, &none);
        // Mondays 2027-03-01 … 2027-04-26: eight weeks.
        let (from, to) = (utc(2027, 2, 28, 0, 0), utc(2027, 5, 2, 0, 0));
        let mondays: Vec<NaiveDate> = (0..9)
            .map(|w| date(2027, 3, 1) + Duration::weeks(w))
            .collect();
        /// A zone and, for some local Mondays, the exact instant expected.
        type Case = (Tz, [(NaiveDate, DateTime<Utc>); 2]);
        let cases: [Case; 5] = [
            (
                America::Los_Angeles,
                [
                    (date(2027, 3, 8), utc(2027, 3, 8, 17, 0)),
                    (date(2027, 3, 15), utc(2027, 3, 15, 16, 0)),
                ],
            ),
            (
                Europe::London,
                [
                    (date(2027, 3, 22), utc(2027, 3, 22, 9, 0)),
                    (date(2027, 3, 29), utc(2027, 3, 29, 8, 0)),
                ],
            ),
            (
                Asia::Kolkata,
                [
                    (date(2027, 3, 1), utc(2027, 3, 1, 3, 30)),
                    (date(2027, 4, 26), utc(2027, 4, 26, 3, 30)),
                ],
            ),
            (
                Asia::Kathmandu,
                [
                    (date(2027, 3, 1), utc(2027, 3, 1, 3, 15)),
                    (date(2027, 3, 29), utc(2027, 3, 29, 3, 15)),
                ],
            ),
            (
                Pacific::Auckland,
                [
                    (date(2027, 3, 29), utc(2027, 3, 28, 20, 0)),
                    (date(2027, 4, 5), utc(2027, 4, 4, 21, 0)),
                ],
            ),
        ];
        for (tz, expected) in cases {
            let f = firings_between(&r, tz, from, to);
            assert_eq!(
                local_dates(&f),
                mondays,
                "{tz}: one firing per Monday, none doubled"
            );
            for firing in &f {
                assert_eq!(
                    firing.local.format("%a %H:%M").to_string(),
                    "Mon 09:00",
                    "{tz}"
                );
                assert_eq!(firing.utc, firing.local.with_timezone(&Utc), "{tz}");
                assert_eq!(
                    firing.nominal,
                    firing.local.naive_local(),
                    "{tz}: nothing moved"
                );
            }
            for (day, instant) in expected {
                let on_day = f.iter().find(|f| f.local.date_naive() == day);
                assert_eq!(on_day.map(|f| f.utc), Some(instant), "{tz} on {day}");
            }
        }
        // The period key is the same for every zone: one round.
        let keys = |tz| {
            firings_between(&r, tz, from, to)
                .iter()
                .map(Firing::period_key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Pacific::Auckland), keys(America::Los_Angeles));
        assert_eq!(keys(Europe::London)[0], "2027-03-01T09:00");
    }

    #[test]
    fn a_time_in_the_gap_fires_once_at_its_end_and_a_repeated_time_once_at_first() {
        let none = BTreeSet::new();
        let gap = cadence("30 2 * * *");
        let mut r = rules(&gap, &none);
        r.working_days = WorkingDays::all();
        let ny = America::New_York;
        let f = firings_between(&r, ny, utc(2027, 3, 13, 12, 0), utc(2027, 3, 15, 12, 0));
        assert_eq!(
            instants(&f),
            [utc(2027, 3, 14, 7, 0), utc(2027, 3, 15, 6, 30)],
            "02:30 does not exist on the 14th: 03:00 EDT"
        );
        assert_eq!(f[0].local.format("%H:%M %Z").to_string(), "03:00 EDT");
        assert_eq!(f[0].period_key(), "2027-03-14T02:30");

        let overlap = cadence("30 1 * * *");
        let r = ScheduleRules {
            cadence: &overlap,
            ..r
        };
        let f = firings_between(&r, ny, utc(2027, 11, 7, 0, 0), utc(2027, 11, 8, 0, 0));
        assert_eq!(
            instants(&f),
            [utc(2027, 11, 7, 5, 30)],
            "the first 01:30, still EDT"
        );
    }

    #[test]
    fn a_daily_cadence_fires_exactly_once_every_day_of_the_year_in_dst_zones() {
        let none = BTreeSet::new();
        for expr in [
            "30 2 * * *",
            "0 2 * * *",
            "30 1 * * *",
            "0 0 * * *",
            "59 23 * * *",
        ] {
            let c = cadence(expr);
            let mut r = rules(&c, &none);
            r.working_days = WorkingDays::all();
            r.start_date = date(2027, 1, 1);
            for tz in [
                America::New_York,
                America::Santiago,
                Europe::London,
                Australia::Lord_Howe,
                Pacific::Auckland,
                Asia::Tehran,
            ] {
                let (from, to) = (utc(2027, 1, 2, 0, 0), utc(2027, 12, 30, 0, 0));
                let f = firings_between(&r, tz, from, to);
                let dates = local_dates(&f);
                let unique: BTreeSet<_> = dates.iter().collect();
                assert_eq!(
                    unique.len(),
                    dates.len(),
                    "{expr} in {tz}: a day fired twice"
                );
                let first = dates.first().copied().expect("some firings");
                let last = dates.last().copied().expect("some firings");
                assert_eq!(
                    (last - first).num_days() + 1,
                    dates.len() as i64,
                    "{expr} in {tz}: a day was skipped"
                );
            }
        }
    }

    #[test]
    fn every_two_weeks_counts_from_the_start_dates_iso_week_and_not_before_it() {
        let c = cadence("0 9 * * MON");
        let none = BTreeSet::new();
        let mut r = rules(&c, &none);
        r.every_weeks = 2;
        r.start_date = date(2027, 1, 6); // a Wednesday: its ISO week starts Monday 4 January
        let berlin = Europe::Berlin;
        let f = firings_between(&r, berlin, utc(2026, 12, 1, 0, 0), utc(2027, 3, 1, 0, 0));
        // 4 January is in the anchor week but before the start date itself.
        assert_eq!(
            local_dates(&f),
            [date(2027, 1, 18), date(2027, 2, 1), date(2027, 2, 15)]
        );
        r.every_weeks = 3;
        let f = firings_between(&r, berlin, utc(2027, 1, 1, 0, 0), utc(2027, 3, 1, 0, 0));
        assert_eq!(local_dates(&f), [date(2027, 1, 25), date(2027, 2, 15)]);
        // The week is decided on the nominal date: a daily cadence fires Mon–Fri of every
        // other week, and a Sunday (ISO: the end of the week) belongs to the week before it.
        let daily = cadence("0 9 * * *");
        let mut r = rules(&daily, &none);
        r.every_weeks = 2;
        r.working_days = WorkingDays::all();
        let f = firings_between(&r, berlin, utc(2027, 1, 4, 0, 0), utc(2027, 1, 25, 0, 0));
        let expected: Vec<NaiveDate> = (4..=10).chain(18..=24).map(|d| date(2027, 1, d)).collect();
        assert_eq!(local_dates(&f), expected);
    }

    #[test]
    fn the_week_is_the_members_local_one() {
        // Monday 00:30 in Auckland is still Sunday in UTC; it belongs to Monday's ISO week.
        let c = cadence("30 0 * * MON");
        let none = BTreeSet::new();
        let mut r = rules(&c, &none);
        r.every_weeks = 2;
        let f = firings_between(
            &r,
            Pacific::Auckland,
            utc(2027, 1, 1, 0, 0),
            utc(2027, 1, 31, 0, 0),
        );
        assert_eq!(local_dates(&f), [date(2027, 1, 4), date(2027, 1, 18)]);
        assert_eq!(f[0].utc, utc(2027, 1, 3, 11, 30));
    }

    #[test]
    fn sunday_to_thursday_working_week() {
        let daily = cadence("0 9 * * *");
        let none = BTreeSet::new();
        let mut r = rules(&daily, &none);
        r.working_days = WorkingDays::parse_names(&names(&["SUN", "MON", "TUE", "WED", "THU"]))
            .expect("valid names");
        r.non_working_day = NonWorkingDayPolicy::Skip;
        let jerusalem = Asia::Jerusalem;
        let (from, to) = (utc(2027, 1, 10, 0, 0), utc(2027, 1, 17, 0, 0));
        let f = firings_between(&r, jerusalem, from, to);
        let days: Vec<Weekday> = f.iter().map(|f| f.local.weekday()).collect();
        use Weekday::*;
        assert_eq!(days, [Sun, Mon, Tue, Wed, Thu]);
        assert!(f
            .iter()
            .all(|f| f.local.format("%H:%M").to_string() == "09:00"));

        // Moving instead: Friday's and Saturday's firings land on Sunday 09:00, where Sunday
        // has its own firing; the unmoved one is kept, so still one pulse a day.
        r.non_working_day = NonWorkingDayPolicy::NextWorkingDay;
        let moved = firings_between(&r, jerusalem, from, to);
        assert_eq!(moved, f);
        assert_eq!(moved[0].period_key(), "2027-01-10T09:00");
    }

    #[test]
    fn a_holiday_moves_a_monday_to_tuesday_or_drops_it() {
        let holidays: BTreeSet<_> = [date(2027, 1, 11)].into();
        let monday = cadence("0 9 * * MON");
        let mut r = rules(&monday, &holidays);
        let berlin = Europe::Berlin;
        let (from, to) = (utc(2027, 1, 10, 0, 0), utc(2027, 1, 17, 0, 0));
        let f = firings_between(&r, berlin, from, to);
        assert_eq!(instants(&f), [utc(2027, 1, 12, 8, 0)], "Tuesday 09:00 CET");
        assert_eq!(
            f[0].period_key(),
            "2027-01-11T09:00",
            "the round is still Monday's"
        );
        assert!(f[0].moved_to_another_day());

        r.non_working_day = NonWorkingDayPolicy::Skip;
        assert!(firings_between(&r, berlin, from, to).is_empty());
    }

    #[test]
    fn a_saturday_cadence_with_a_monday_to_friday_week_fires_on_monday() {
        let saturday = cadence("0 10 * * SAT");
        let none = BTreeSet::new();
        let r = rules(&saturday, &none);
        let f = firings_between(
            &r,
            Europe::Berlin,
            utc(2027, 1, 8, 0, 0),
            utc(2027, 1, 12, 0, 0),
        );
        assert_eq!(instants(&f), [utc(2027, 1, 11, 9, 0)]);
        assert_eq!(f[0].local.weekday(), Weekday::Mon);
        assert_eq!(f[0].period_key(), "2027-01-09T10:00");
    }

    #[test]
    fn colliding_firings_keep_the_unmoved_one_else_the_earliest_nominal() {
        let none = BTreeSet::new();
        let berlin = Europe::Berlin;
        let week = (utc(2027, 1, 10, 0, 0), utc(2027, 1, 17, 0, 0));

        // Saturday's and Sunday's firings both move onto Monday 09:00: the earliest is kept.
        let weekend = cadence("0 9 * * SAT,SUN");
        let r = rules(&weekend, &none);
        let f = firings_between(&r, berlin, week.0, week.1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].period_key(), "2027-01-09T09:00", "Saturday's");
        assert_eq!(f[0].local.date_naive(), date(2027, 1, 11));

        // Add Monday's own firing: it is the one kept.
        let with_monday = cadence("0 9 * * SAT,SUN,MON");
        let r = rules(&with_monday, &none);
        let f = firings_between(&r, berlin, week.0, week.1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].period_key(), "2027-01-11T09:00", "Monday's own");
        assert!(!f[0].moved_to_another_day());

        // Different times do not collide: both fire on Monday.
        let two_times = cadence("0 9 * * SAT,MON");
        let three = cadence("0 15 * * SAT");
        for (c, n) in [(&two_times, 1), (&three, 1)] {
            let r = rules(c, &none);
            assert_eq!(
                firings_between(&r, berlin, utc(2027, 1, 11, 0, 0), utc(2027, 1, 12, 0, 0)).len(),
                n
            );
        }
        let sat_afternoon_and_monday = cadence("0 9,15 * * SAT,MON");
        let r = rules(&sat_afternoon_and_monday, &none);
        let f = firings_between(&r, berlin, utc(2027, 1, 11, 0, 0), utc(2027, 1, 12, 0, 0));
        let keys: Vec<String> = f.iter().map(Firing::period_key).collect();
        assert_eq!(keys, ["2027-01-11T09:00", "2027-01-11T15:00"]);
    }

    #[test]
    fn times_collapsed_by_a_dst_gap_fire_once() {
        let none = BTreeSet::new();
        let c = cadence("0,30 2,3 * * *");
        let mut r = rules(&c, &none);
        r.working_days = WorkingDays::all();
        let f = firings_between(
            &r,
            America::New_York,
            utc(2027, 3, 14, 5, 0),
            utc(2027, 3, 14, 12, 0),
        );
        // 02:00, 02:30 and 03:00 are all 03:00 EDT: one firing, the earliest nominal.
        assert_eq!(
            instants(&f),
            [utc(2027, 3, 14, 7, 0), utc(2027, 3, 14, 7, 30)]
        );
        assert_eq!(f[0].period_key(), "2027-03-14T02:00");
    }

    #[test]
    fn a_long_holiday_moves_firings_from_well_before_the_window_into_it() {
        // Three weeks of holidays: the Mondays 20 and 27 December and 3 and 10 January all
        // move to Tuesday 11 January; Monday 10 January is a holiday too.
        let holidays: BTreeSet<_> = date(2027, 12, 20)
            .iter_days()
            .take_while(|d| *d <= date(2028, 1, 10))
            .collect();
        let monday = cadence("0 9 * * MON");
        let mut r = rules(&monday, &holidays);
        r.start_date = date(2027, 1, 4);
        let london = Europe::London;
        let f = firings_between(&r, london, utc(2028, 1, 11, 0, 0), utc(2028, 1, 12, 0, 0));
        assert_eq!(instants(&f), [utc(2028, 1, 11, 9, 0)]);
        assert_eq!(
            f[0].period_key(),
            "2027-12-20T09:00",
            "the earliest nominal"
        );
        // A window around the holidays has nothing in it.
        assert!(
            firings_between(&r, london, utc(2027, 12, 20, 0, 0), utc(2028, 1, 11, 0, 0)).is_empty()
        );
    }

    #[test]
    fn nothing_fires_before_the_start_date_even_when_moved_after_it() {
        let saturday = cadence("0 10 * * SAT");
        let none = BTreeSet::new();
        let mut r = rules(&saturday, &none);
        r.start_date = date(2027, 1, 4); // Monday; Saturday 2 January would move onto it
        let f = firings_between(
            &r,
            Europe::Berlin,
            utc(2027, 1, 1, 0, 0),
            utc(2027, 1, 12, 0, 0),
        );
        assert_eq!(local_dates(&f), [date(2027, 1, 11)]);
    }

    #[test]
    fn the_window_is_half_open_ordered_and_splitting_it_changes_nothing() {
        let c = cadence("0 9,17 * * MON-FRI");
        let holidays: BTreeSet<_> = [date(2027, 1, 6)].into();
        let mut r = rules(&c, &holidays);
        r.working_days = WorkingDays::parse_names(&names(&["MON", "TUE", "THU"])).expect("valid");
        let berlin = Europe::Berlin;
        let at = utc(2027, 1, 4, 8, 0); // 09:00 Berlin
        let f = firings_between(&r, berlin, at, at + Duration::days(3));
        assert_eq!(f.first().map(|f| f.utc), Some(at), "from is included");
        assert!(
            !firings_between(&r, berlin, at - Duration::days(1), at)
                .iter()
                .any(|f| f.utc == at),
            "to is excluded"
        );
        assert!(f.windows(2).all(|w| w[0].utc < w[1].utc));
        assert!(firings_between(&r, berlin, at, at).is_empty());
        assert!(firings_between(&r, berlin, at, at - Duration::hours(1)).is_empty());

        for tz in [
            berlin,
            Pacific::Kiritimati,
            Pacific::Pago_Pago,
            Australia::Lord_Howe,
        ] {
            let (a, c_) = (utc(2027, 1, 1, 0, 0), utc(2027, 2, 1, 0, 0));
            let whole = firings_between(&r, tz, a, c_);
            assert!(whole.windows(2).all(|w| w[0].utc < w[1].utc));
            let mut pieces = Vec::new();
            let mut t = a;
            while t < c_ {
                let next = t + Duration::hours(7);
                pieces.extend(firings_between(&r, tz, t, next.min(c_)));
                t = next;
            }
            assert_eq!(pieces, whole, "{tz}");
        }
    }

    #[test]
    fn no_working_days_means_no_firings_not_a_loop() {
        let c = cadence("0 9 * * *");
        let none = BTreeSet::new();
        let mut r = rules(&c, &none);
        r.working_days = WorkingDays::from_days([]);
        assert!(firings_between(
            &r,
            Europe::Berlin,
            utc(2027, 1, 1, 0, 0),
            utc(2027, 2, 1, 0, 0)
        )
        .is_empty());
        // A year of holidays: firings are dropped after the bounded search, no hang.
        let all_year: BTreeSet<_> = date(2027, 1, 1)
            .iter_days()
            .take_while(|d| d.year() < 2029)
            .collect();
        let r = rules(&c, &all_year);
        assert!(firings_between(
            &r,
            Europe::Berlin,
            utc(2027, 6, 1, 0, 0),
            utc(2027, 6, 8, 0, 0)
        )
        .is_empty());
    }

    #[test]
    fn weekday_sets_parse_names_and_reject_nonsense() {
        assert_eq!(
            WorkingDays::parse_names(&[]),
            Err(CadenceError::NoWorkingDays)
        );
        let err = WorkingDays::parse_names(&names(&["MON", "FUNDAY"])).expect_err("unknown day");
        assert_eq!(
            err.to_string(),
            "'FUNDAY' is not a day of the week (use MON, TUE, WED, THU, FRI, SAT or SUN)"
        );
        let s =
            WorkingDays::parse_names(&["mon".to_string(), " Friday ".to_string()]).expect("valid");
        assert!(s.contains(Weekday::Mon) && s.contains(Weekday::Fri) && !s.contains(Weekday::Tue));
        assert_eq!(s.names(), ["MON", "FRI"]);
        assert_eq!(WorkingDays::mon_to_fri().iter().count(), 5);
        // The set is chrono's: the wrapper adds names, not a second bit layout.
        assert_eq!(
            WorkingDays::mon_to_fri().as_set(),
            chrono::WeekdaySet::ALL
                .difference(chrono::WeekdaySet::from_array([Weekday::Sat, Weekday::Sun]))
        );
        assert_eq!(
            WorkingDays::from(chrono::WeekdaySet::single(Weekday::Sun)).names(),
            ["SUN"]
        );
        assert!(!WorkingDays::all().is_empty());
        let json = serde_json::to_string(&WorkingDays::mon_to_fri()).expect("serialises");
        assert_eq!(json, r#"["MON","TUE","WED","THU","FRI"]"#);
        let back: WorkingDays = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, WorkingDays::mon_to_fri());
        assert!(serde_json::from_str::<WorkingDays>("[]").is_err());
    }

    #[test]
    fn policy_names_are_the_config_files() {
        let p: NonWorkingDayPolicy = serde_json::from_str("\"next_working_day\"").expect("valid");
        assert_eq!(p, NonWorkingDayPolicy::NextWorkingDay);
        let p: NonWorkingDayPolicy = serde_json::from_str("\"skip\"").expect("valid");
        assert_eq!(p, NonWorkingDayPolicy::Skip);
        assert_eq!(
            NonWorkingDayPolicy::default(),
            NonWorkingDayPolicy::NextWorkingDay
        );
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let c = cadence("* * * * *");
        let none = BTreeSet::new();
        for every_weeks in [0, 1, u32::MAX] {
            for start_date in [NaiveDate::MIN, date(2027, 1, 4), NaiveDate::MAX] {
                let r = ScheduleRules {
                    every_weeks,
                    start_date,
                    working_days: WorkingDays::all(),
                    ..rules(&c, &none)
                };
                for tz in [Pacific::Kiritimati, Pacific::Pago_Pago, Europe::London] {
                    let edges = [
                        (
                            DateTime::<Utc>::MIN_UTC,
                            DateTime::<Utc>::MIN_UTC + Duration::hours(3),
                        ),
                        (
                            DateTime::<Utc>::MAX_UTC - Duration::hours(3),
                            DateTime::<Utc>::MAX_UTC,
                        ),
                    ];
                    for (from, to) in edges {
                        for f in firings_between(&r, tz, from, to) {
                            assert!(f.utc >= from && f.utc < to);
                            let _ = f.period_key();
                        }
                    }
                }
            }
        }
    }
}
