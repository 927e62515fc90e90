//! The digest benchmark (issue 8, item 7): a synthetic but realistic history, and the timing
//! of the digest computation over it.
//!
//! `pulseloop bench-data` writes program `bench`: 1,000 members (200 leaders, 800
//! participants), two weekly anonymous surveys of 12 questions each (10 scales, an eNPS or a
//! yes/no, an optional comment) over 52 weeks, 85 % answering, every round sealed as the seal
//! leaves it (no delivery on an answer, counts on the round): about 1,000,000 answers.
//! Inserts are multi-row, one transaction per week. `pulseloop bench-digest` builds the digest
//! of the last week `runs` times and prints the median and the 95th percentile.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::path::Path;
use std::time::Instant;

use super::service::{build, current_periods};
use crate::domain::ids::ProgramId;
use crate::domain::program::Program;
use crate::storage::digest::Cell;
use crate::storage::Store;

pub const BENCH_PROGRAM: &str = "bench";
const SCALES: usize = 10;
const ANSWER_RATE: f64 = 0.85;
const COMMENT_RATE: f64 = 0.15;

/// Monday 5 January 2026, the first week of the history.
fn first_monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).expect("valid date")
}

/// The benchmark program as a program file would say it.
pub fn bench_program_toml() -> String {
    let mut t = format!(
        r#"id = "{BENCH_PROGRAM}"
name = "Benchmark program"
timezone = "Europe/Berlin"
start_date = "{}"
sponsor_channels = ["C0BENCH01"]
owners = ["U0BENCHOWNER"]
anonymity_threshold = 5
comment_threshold = 5
baseline_rounds = 2

[[members]]
slack_id = "U0BENCH0000"
role = "leader"

[digest]
cadence = "0 16 * * FRI"
chart = false
"#,
        first_monday()
    );
    for (survey, extra_kind) in [("weekly-pulse", "enps"), ("team-health", "yes_no")] {
        t.push_str(&format!(
            "\n[[surveys]]\nid = \"{survey}\"\naudience = [\"leader\", \"participant\"]\ncadence = \"0 10 * * MON\"\nwindow_hours = 48\nanonymity = \"anonymous\"\n"
        ));
        for (key, kind) in questions(survey, extra_kind) {
            t.push_str(&format!(
                "\n[[surveys.questions]]\nkey = \"{key}\"\nkind = \"{kind}\"\nprompt = \"{key}?\"\n"
            ));
            if kind == "scale" {
                t.push_str("low_label = \"Low\"\nhigh_label = \"High\"\n");
            }
        }
    }
    t
}

fn questions(survey: &str, extra_kind: &str) -> Vec<(String, String)> {
    let prefix = survey.replace('-', "_");
    let mut q: Vec<(String, String)> = (1..=SCALES)
        .map(|i| (format!("{prefix}_score_{i:02}"), "scale".to_string()))
        .collect();
    q.push((format!("{prefix}_{extra_kind}"), extra_kind.to_string()));
    q.push((format!("{prefix}_comment"), "text".to_string()));
    q
}

pub fn bench_program() -> Program {
    crate::config::program::parse_program(Path::new("bench.toml"), &bench_program_toml())
        .expect("the benchmark program is valid")
}

/// When the benchmark's digest is computed: the Wednesday of the last week.
pub fn bench_now(weeks: u32) -> DateTime<Utc> {
    let monday = first_monday() + Duration::weeks(i64::from(weeks.max(1)) - 1);
    Utc.from_utc_datetime(
        &(monday + Duration::days(2))
            .and_hms_opt(12, 0, 0)
            .expect("time"),
    )
}

/// Writes the history; returns a one-line report.
pub async fn seed(store: &Store, members: u32, weeks: u32) -> Result<String, anyhow::Error> {
    let program = bench_program();
    let started = Instant::now();
    store.bulk_load_mode().await?;
    let now_ms = Utc::now().timestamp_millis();
    let existing = store.members_of(&program.id).await?;
    if !existing.is_empty() {
        anyhow::bail!(
            "the database already holds program '{BENCH_PROGRAM}'; point DATABASE_URL at a fresh database"
        );
    }
    let mut tx = store.begin().await?;
    tx.insert_rows(
        "programs",
        &[
            "id",
            "name",
            "timezone",
            "start_date",
            "settings",
            "created_at",
            "updated_at",
        ],
        &[vec![
            Cell::Text(BENCH_PROGRAM.into()),
            Cell::Text(program.name.clone()),
            Cell::Text(program.timezone.name().into()),
            Cell::Text(program.start_date.to_string()),
            Cell::Text("{}".into()),
            Cell::Int(now_ms),
            Cell::Int(now_ms),
        ]],
    )
    .await?;
    for s in &program.surveys {
        tx.insert_rows(
            "surveys",
            &["program_id", "id", "definition", "created_at", "updated_at"],
            &[vec![
                Cell::Text(BENCH_PROGRAM.into()),
                Cell::Text(s.id.clone()),
                Cell::Text("{}".into()),
                Cell::Int(now_ms),
                Cell::Int(now_ms),
            ]],
        )
        .await?;
        let rows: Vec<Vec<Cell>> = s
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| {
                vec![
                    Cell::Text(BENCH_PROGRAM.into()),
                    Cell::Text(s.id.clone()),
                    Cell::Text(q.key.clone()),
                    Cell::Int(i as i64),
                    Cell::Text(q.kind.as_str().into()),
                    Cell::Text(q.prompt.clone()),
                    Cell::Text("{}".into()),
                    Cell::Int(now_ms),
                ]
            })
            .collect();
        tx.insert_rows(
            "questions",
            &[
                "program_id",
                "survey_id",
                "metric_key",
                "position",
                "kind",
                "prompt",
                "definition",
                "updated_at",
            ],
            &rows,
        )
        .await?;
    }
    let member_rows: Vec<Vec<Cell>> = (0..members)
        .map(|i| {
            vec![
                Cell::Text(BENCH_PROGRAM.into()),
                Cell::Text(format!("U0BENCH{i:05}")),
                Cell::Text(if i % 5 == 0 { "leader" } else { "participant" }.into()),
                Cell::Text("file".into()),
                Cell::Text("active".into()),
                Cell::Int(now_ms),
                Cell::Int(now_ms),
            ]
        })
        .collect();
    tx.insert_rows(
        "members",
        &[
            "program_id",
            "slack_user_id",
            "role",
            "source",
            "state",
            "created_at",
            "updated_at",
        ],
        &member_rows,
    )
    .await?;
    tx.commit().await?;
    let people: Vec<(i64, String)> = store
        .members_of(&ProgramId::from(BENCH_PROGRAM.to_string()))
        .await?
        .into_iter()
        .map(|m| (m.id.0, m.role))
        .collect();

    let mut rng = fastrand::Rng::with_seed(8);
    let mut answers: u64 = 0;
    for week in 0..weeks {
        let monday = first_monday() + Duration::weeks(i64::from(week));
        let opened = program
            .timezone
            .from_local_datetime(&monday.and_hms_opt(10, 0, 0).expect("time"))
            .earliest()
            .expect("10:00 exists")
            .with_timezone(&Utc);
        let opened_ms = opened.timestamp_millis();
        let closes_ms = (opened + Duration::hours(48)).timestamp_millis();
        let mut tx = store.begin().await?;
        for survey in &program.surveys {
            let answering: Vec<bool> = people.iter().map(|_| rng.f64() < ANSWER_RATE).collect();
            let answered = answering.iter().filter(|a| **a).count() as i64;
            let round_id = tx
                .insert_returning_id(
                    "rounds",
                    &[
                        "program_id",
                        "survey_id",
                        "period_key",
                        "origin",
                        "state",
                        "opened_at",
                        "closes_at",
                        "closed_at",
                        "sealed_at",
                        "anonymity",
                        "anonymity_k",
                        "asked_count",
                        "answered_count",
                    ],
                    vec![
                        Cell::Text(BENCH_PROGRAM.into()),
                        Cell::Text(survey.id.clone()),
                        Cell::Text(format!("{monday}T10:00")),
                        Cell::Text("schedule".into()),
                        Cell::Text("closed".into()),
                        Cell::Int(opened_ms),
                        Cell::Int(closes_ms),
                        Cell::Int(closes_ms),
                        Cell::Int(closes_ms),
                        Cell::Text("anonymous".into()),
                        Cell::Int(5),
                        Cell::Int(people.len() as i64),
                        Cell::Int(answered),
                    ],
                )
                .await?;
            let deliveries: Vec<Vec<Cell>> = people
                .iter()
                .map(|(id, _)| {
                    vec![
                        Cell::Int(round_id),
                        Cell::Int(*id),
                        Cell::Text("closed".into()),
                        Cell::Int(opened_ms),
                        Cell::Text(format!("{monday}T10:00:00+01:00")),
                        Cell::Text("Europe/Berlin".into()),
                        Cell::Int(closes_ms),
                        Cell::Int(opened_ms),
                        Cell::Int(closes_ms),
                    ]
                })
                .collect();
            tx.insert_rows(
                "deliveries",
                &[
                    "round_id",
                    "member_id",
                    "state",
                    "scheduled_at",
                    "local_time",
                    "timezone",
                    "closes_at",
                    "sent_at",
                    "closed_at",
                ],
                &deliveries,
            )
            .await?;
            // Scores drift up slowly over the year, leaders a little higher.
            let drift = f64::from(week) / f64::from(weeks.max(1));
            let mut rows: Vec<Vec<Cell>> = Vec::new();
            for ((_, role), answers_now) in people.iter().zip(&answering) {
                if !answers_now {
                    continue;
                }
                let lift = if role == "leader" { 0.3 } else { 0.0 };
                for q in &survey.questions {
                    let (number, text) = match q.kind.as_str() {
                        "scale" => {
                            let v = (2.8 + drift + lift + rng.f64() * 2.2 - 0.6)
                                .round()
                                .clamp(1.0, 5.0);
                            (Cell::Real(v), Cell::Null)
                        }
                        "enps" => {
                            let v = (5.5 + 2.0 * drift + rng.f64() * 5.0)
                                .round()
                                .clamp(0.0, 10.0);
                            (Cell::Real(v), Cell::Null)
                        }
                        "yes_no" => (
                            Cell::Real(if rng.f64() < 0.6 + 0.2 * drift {
                                1.0
                            } else {
                                0.0
                            }),
                            Cell::Null,
                        ),
                        _ if rng.f64() < COMMENT_RATE => (
                            Cell::Null,
                            Cell::Text(format!("Synthetic comment {} of week {week}", rng.u32(..))),
                        ),
                        _ => continue,
                    };
                    rows.push(vec![
                        Cell::Int(round_id),
                        Cell::Text(q.key.clone()),
                        Cell::Text(role.clone()),
                        number,
                        text,
                        Cell::Int(opened_ms),
                        Cell::Int(opened_ms),
                    ]);
                }
            }
            answers += tx
                .insert_rows(
                    "responses",
                    &[
                        "round_id",
                        "metric_key",
                        "role",
                        "value_number",
                        "value_text",
                        "created_at",
                        "updated_at",
                    ],
                    &rows,
                )
                .await?;
        }
        let wins: Vec<Vec<Cell>> = (0..3)
            .map(|i| {
                vec![
                    Cell::Text(BENCH_PROGRAM.into()),
                    Cell::Text(format!("Synthetic small win {i} of week {week}")),
                    Cell::Text("anonymous".into()),
                    Cell::Text(format!("bench:{week}:{i}")),
                    Cell::Int(opened_ms + 3_600_000 * (i + 1)),
                ]
            })
            .collect();
        tx.insert_rows(
            "wins",
            &["program_id", "text", "consent", "source_key", "created_at"],
            &wins,
        )
        .await?;
        tx.insert_rows(
            "actions",
            &["program_id", "author_slack_id", "text", "created_at"],
            &[vec![
                Cell::Text(BENCH_PROGRAM.into()),
                Cell::Text("U0BENCHOWNER".into()),
                Cell::Text(format!("Synthetic action of week {week}")),
                Cell::Int(opened_ms + 86_400_000),
            ]],
        )
        .await?;
        tx.commit().await?;
    }
    store.after_bulk_load().await?;
    Ok(format!(
        "program '{BENCH_PROGRAM}': {} members, {weeks} weeks, {answers} answers written in {:.1} s",
        people.len(),
        started.elapsed().as_secs_f64()
    ))
}

/// Builds the digest of the benchmark's last week `runs` times (after one warm-up run);
/// returns the figures as one line.
pub async fn time_digest(store: &Store, runs: u32) -> Result<String, anyhow::Error> {
    let program = bench_program();
    let rounds = store.members_of(&program.id).await?;
    if rounds.is_empty() {
        anyhow::bail!("no benchmark history: run `pulseloop bench-data` first");
    }
    let weeks = store.bench_weeks(&program.id).await?;
    let periods = current_periods(&program, bench_now(weeks as u32))?;
    let warm = build(store, &program, &periods).await?;
    let mut times: Vec<f64> = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let t = Instant::now();
        let d = build(store, &program, &periods).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(d);
    }
    times.sort_by(f64::total_cmp);
    let pick =
        |q: f64| times[((q * (times.len() - 1) as f64).round() as usize).min(times.len() - 1)];
    let answers = store.bench_answers(&program.id).await?;
    Ok(format!(
        "{:?}: digest over {answers} stored answers ({} metrics, participation {}/{}), {runs} runs: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        store.backend(),
        warm.metrics.len(),
        warm.participation.answered,
        warm.participation.asked,
        pick(0.5),
        pick(0.95),
        times.last().copied().unwrap_or_default()
    ))
}
