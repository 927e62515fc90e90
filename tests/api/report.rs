//! The ROI report on a hand-computed fixture: participation, each metric before (baseline)
//! and after with Welch's interval, eNPS, KPIs, named wins only, actions; the anonymity rule
//! per round; and `pulseloop report` writing report.md and trend.png.

use crate::helpers::*;
use crate::kpis::{pilot_app, pulseloop};
use chrono::{NaiveDate, TimeZone, Utc};
use pulseloop::digest::report::{build_report, Group, RoiReport};
use pulseloop::domain::ids::ProgramId;

/// 10:00 in Berlin (09:00 UTC in winter) on a January/February date, in ms.
fn monday_ms(month: u32, day: u32) -> i64 {
    Utc.with_ymd_and_hms(2027, month, day, 9, 0, 0)
        .unwrap()
        .timestamp_millis()
}

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, month, day).unwrap()
}

/// Six sealed rounds of the weekly survey (k = 3, baseline = the first 2):
///
/// | round | opened     | value (scale)  | recommend (eNPS) | asked / answered |
/// |-------|------------|----------------|------------------|------------------|
/// | 101   | 2027-01-04 | 3, 4, 3        | 10, 9, 3         | 4 / 3  baseline  |
/// | 102   | 2027-01-11 | 4, 4, 2        | 8, 10, 6         | 4 / 3  baseline  |
/// | 103   | 2027-01-18 | 5, 5, 5        |                  | 4 / 3  before the range |
/// | 104   | 2027-01-25 | 5, 4, 5, 4     | 10, 10, 9, 7     | 5 / 4  in range  |
/// | 105   | 2027-02-01 | 1, 1           |                  | 4 / 2  in range, under k |
/// | 106   | 2027-02-08 | 1, 1, 1        |                  | 4 / 3  after the range |
///
/// Range 2027-01-25 … 2027-02-07. By hand:
/// - participation before 6 / 8 = 75 %, after (104, 105) 6 / 9 = 66.7 %;
/// - value before: n 6, mean 20/6 = 3.3333, var 0.6667; after (105 under k, left out):
///   n 4, mean 4.5, var 0.3333; change +1.1667, Welch df 7.9032, t(0.975) 2.3109,
///   95 % CI [0.1476, 2.1857]: more than noise;
/// - eNPS before: 3 promoters, 2 detractors of 6 = +16.67; after 3 of 4, none = +75;
/// - KPI complaints (lower is better): baseline (10 + 14)/2 = 12, range (9 + 7)/2 = 8,
///   −4, better (the 2027-01-18 value of 20 is neither);
/// - wins: the named one in the range only; actions: the one in the range only.
pub async fn fixture(app: &TestApp) {
    let mut statements: Vec<String> = Vec::new();
    let rounds = [
        (101, (1, 4), 4, 3),
        (102, (1, 11), 4, 3),
        (103, (1, 18), 4, 3),
        (104, (1, 25), 5, 4),
        (105, (2, 1), 4, 2),
        (106, (2, 8), 4, 3),
    ];
    for (id, (m, d), asked, answered) in rounds {
        let at = monday_ms(m, d);
        statements.push(format!(
            "INSERT INTO rounds (id, program_id, survey_id, period_key, origin, state, opened_at,
                closes_at, closed_at, sealed_at, anonymity, anonymity_k, asked_count, answered_count)
             VALUES ({id}, 'pilot', 'weekly', '2027-{m:02}-{d:02}T10:00', 'schedule', 'closed', {at},
                {c}, {c}, {c}, 'anonymous', 3, {asked}, {answered})",
            c = at + 48 * 3_600_000
        ));
    }
    let answers: &[(i64, &str, &[f64])] = &[
        (101, "value", &[3.0, 4.0, 3.0]),
        (102, "value", &[4.0, 4.0, 2.0]),
        (103, "value", &[5.0, 5.0, 5.0]),
        (104, "value", &[5.0, 4.0, 5.0, 4.0]),
        (105, "value", &[1.0, 1.0]),
        (106, "value", &[1.0, 1.0, 1.0]),
        (101, "recommend", &[10.0, 9.0, 3.0]),
        (102, "recommend", &[8.0, 10.0, 6.0]),
        (104, "recommend", &[10.0, 10.0, 9.0, 7.0]),
    ];
    for (round, key, values) in answers {
        for v in *values {
            statements.push(format!(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, created_at, updated_at)
                 VALUES ({round}, NULL, '{key}', 'folded', {v}, 0, 0)"
            ));
        }
    }
    let member = "(SELECT id FROM members WHERE slack_user_id = 'U0KPI0001')";
    let wins = [
        (
            "Closed the Acme deal after coaching",
            "named",
            monday_ms(1, 26),
        ),
        ("An anonymous win", "anonymous", monday_ms(1, 27)),
        ("A private win", "private", monday_ms(1, 27)),
        ("A named win before the range", "named", monday_ms(1, 5)),
    ];
    for (i, (text, consent, at)) in wins.into_iter().enumerate() {
        let author = if consent == "anonymous" {
            "NULL"
        } else {
            member
        };
        statements.push(format!(
            "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, created_at)
             VALUES ('pilot', {author}, '{text}', '{consent}', 'fixture-{i}', {at})"
        ));
    }
    for (text, at) in [
        ("Shorter coaching sessions on Fridays", monday_ms(1, 27)),
        ("An action before the range", monday_ms(1, 6)),
    ] {
        statements.push(format!(
            "INSERT INTO actions (program_id, author_slack_id, text, created_at)
             VALUES ('pilot', 'U0OWNER01', '{text}', {at})"
        ));
    }
    statements.push(
        "INSERT INTO kpis (program_id, kpi_key, label, unit, direction, created_at, updated_at)
         VALUES ('pilot', 'complaints', 'Customer complaints', '', 'lower', 0, 0)"
            .into(),
    );
    for (day, value) in [
        ("2027-01-04", 10),
        ("2027-01-11", 14),
        ("2027-01-18", 20),
        ("2027-01-25", 9),
        ("2027-02-01", 7),
    ] {
        statements.push(format!(
            "INSERT INTO kpi_values (program_id, kpi_key, period_start, value, updated_at)
             VALUES ('pilot', 'complaints', '{day}', {value}, 0)"
        ));
    }
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    exec_all(&app.db.url, &refs).await;
}

async fn report(app: &TestApp, from: NaiveDate, to: NaiveDate) -> RoiReport {
    let program = app
        .state
        .catalog
        .program(&ProgramId::from("pilot"))
        .expect("pilot");
    build_report(&app.store, &program, from, to)
        .await
        .expect("report")
}

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-3,
        "{actual} is not {expected}"
    );
}

#[tokio::test]
async fn the_reports_before_and_after_numbers_match_the_hand_computed_fixture() {
    let app = pilot_app().await;
    fixture(&app).await;
    let r = report(&app, date(1, 25), date(2, 7)).await;

    assert_eq!(r.baseline_span, Some((date(1, 4), date(1, 11))));
    let (b, a) = (r.participation_before, r.participation_after);
    assert_eq!((b.asked, b.answered, b.rounds), (8, 6, 2));
    assert_eq!((a.asked, a.answered, a.rounds), (9, 6, 2));

    let value = r.metrics.iter().find(|m| m.key == "value").unwrap();
    let before = value.before.summary().expect("baseline shown");
    assert_eq!(before.n, 6);
    close(before.mean, 20.0 / 6.0);
    close(before.var, 2.0 / 3.0);
    let after = value.after.summary().expect("range shown");
    assert_eq!(after.n, 4, "round 105 (2 answers, under k = 3) is left out");
    close(after.mean, 4.5);
    close(after.var, 1.0 / 3.0);
    let w = value.change.expect("comparable");
    close(w.delta, 7.0 / 6.0);
    close(w.df, 7.903226);
    close(w.t, 2.310928);
    close(w.ci95.lo, 0.147643);
    close(w.ci95.hi, 2.185690);
    assert!(!w.within_noise());

    let enps = r.enps.iter().find(|e| e.key == "recommend").unwrap();
    let (eb, ea) = (enps.before.unwrap(), enps.after.unwrap());
    assert_eq!((eb.n, ea.n), (6, 4));
    close(eb.score, 100.0 / 6.0);
    close(ea.score, 75.0);

    let kpi = &r.kpis[0];
    assert_eq!((kpi.before, kpi.after), (Some(12.0), Some(8.0)));
    assert_eq!((kpi.before_periods, kpi.after_periods), (2, 2));
    assert_eq!((kpi.change, kpi.improved), (Some(-4.0), Some(true)));

    let wins: Vec<&str> = r.wins.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(wins, ["Closed the Acme deal after coaching"]);
    assert_eq!(r.wins[0].author, "U0KPI0001");
    let actions: Vec<&str> = r.actions.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(actions, ["Shorter coaching sessions on Fridays"]);

    let md = r.markdown();
    for expected in [
        "# ROI summary: Pilot Program",
        "| Answered | 75 % (6 of 8 DMs, 2 rounds) | 67 % (6 of 9 DMs, 2 rounds) |",
        "| value | 3.33 (n = 6) | 4.50 (n = 4) | +1.17 [+0.15, +2.19] | up, more than noise |",
        "| recommend (eNPS) | +17 (n = 6) | +75 (n = 4) | +58 points | |",
        "| Customer complaints | lower | 12 (2 periods) | 8 (2 periods) | −4 | better |",
        "- “Closed the Acme deal after coaching” (<@U0KPI0001>)",
        "Shorter coaching sessions on Fridays",
        "![Pulse trend](trend.png)",
    ] {
        assert!(md.contains(expected), "{expected:?} missing in\n{md}");
    }
    for absent in ["anonymous win", "private win", "before the range"] {
        assert!(!md.contains(absent), "{absent:?} must not appear in\n{md}");
    }

    // The chart: the last 8 round dates up to --to; the round under k is a gap.
    let series = &r.trend.series[0];
    assert_eq!(series.label, "value");
    let points: Vec<Option<f64>> = series.points.iter().map(|(_, v)| *v).collect();
    assert_eq!(points.len(), 5);
    assert_eq!(points[4], None, "round 105 has 2 answers, under k");
    close(points[3].unwrap(), 4.5);
}

#[tokio::test]
async fn a_range_with_fewer_than_k_answers_shows_no_number() {
    let app = pilot_app().await;
    fixture(&app).await;
    // Only round 105 (2 answers; k = 3).
    let r = report(&app, date(2, 1), date(2, 1)).await;
    let value = r.metrics.iter().find(|m| m.key == "value").unwrap();
    assert_eq!(value.after, Group::Suppressed);
    assert!(value.change.is_none());
    let md = r.markdown();
    assert!(
        md.contains("| value | 3.33 (n = 6) | fewer than 3 answers | – | not comparable |"),
        "{md}"
    );
    assert!(!md.contains("1.00"), "{md}");
}

#[tokio::test]
async fn pulseloop_report_writes_the_page_and_the_chart() {
    let app = pilot_app().await;
    fixture(&app).await;
    let out_dir = tempfile::tempdir().unwrap();
    let out = pulseloop(
        &app,
        &[
            "report",
            "--program",
            "pilot",
            "--from",
            "2027-01-25",
            "--to",
            "2027-02-07",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // PULSELOOP_WRITE_REPORT=<folder> keeps a copy to look at (docs/roi.md shows one).
    if let Ok(keep) = std::env::var("PULSELOOP_WRITE_REPORT") {
        for file in ["report.md", "trend.png"] {
            std::fs::copy(
                out_dir.path().join(file),
                std::path::Path::new(&keep).join(file),
            )
            .unwrap();
        }
    }
    let md = std::fs::read_to_string(out_dir.path().join("report.md")).unwrap();
    assert!(md.contains("+1.17 [+0.15, +2.19]"), "{md}");
    let png = std::fs::read(out_dir.path().join("trend.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1200);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 600);

    let backwards = pulseloop(
        &app,
        &[
            "report",
            "--program",
            "pilot",
            "--from",
            "2027-02-07",
            "--to",
            "2027-01-25",
        ],
    );
    assert_eq!(backwards.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("is after --to"));
}
