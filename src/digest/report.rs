//! The one-page ROI summary (`pulseloop report --program ID --from DATE --to DATE`): what a
//! sponsor asks after a quarter. Before is the baseline (each survey's first
//! `baseline_rounds` rounds); after is the rounds opened from `--from` to `--to` (local dates
//! in the program's time zone, both included; baseline rounds never count as after).
//!
//! - participation: answers ÷ DMs posted, summed over the rounds;
//! - each scale metric: mean and n before and after, the change with Welch's 95 % interval,
//!   "within noise" when the interval contains 0; eNPS before and after;
//! - each KPI: the baseline mean against the mean of the range, with its direction;
//! - wins whose author chose to be named, and the "you said, we did" actions of the range;
//! - `trend.png`: the scale metrics over the last 8 rounds up to `--to`.
//!
//! Anonymity: a round adds its answers to a metric only when that round has at least `k`
//! answers to it (`k` the larger of the program's threshold and the one the round opened
//! with), and a mean over fewer than `k` answers is never shown ("fewer than k answers").
//! No comment text and no anonymous or private win is read.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::chart::{render_trend_chart, ChartError, ChartSeries, TrendChart};
use crate::domain::program::Program;
use crate::domain::stats::{enps, t_quantile, welch_ci95, Enps, Summary, Welch};
use crate::storage::kpis::Direction;
use crate::storage::report::{ActionNote, NamedWin, ReportRound, RoundMetric};
use crate::storage::{Store, StoreError};

/// How many rounds the trend chart shows.
pub const TREND_ROUNDS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--from {from} is after --to {to}")]
    Range { from: NaiveDate, to: NaiveDate },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
}

/// Answers ÷ DMs posted over a set of rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Participation {
    pub asked: i64,
    pub answered: i64,
    pub rounds: usize,
}

impl Participation {
    pub fn rate(&self) -> Option<f64> {
        (self.asked > 0).then(|| self.answered as f64 / self.asked as f64)
    }
}

/// A metric's answers in one group (before or after), with the anonymity rule applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Group {
    /// At least `k` answers: shown.
    Shown(Summary),
    /// Fewer than `k` answers (or rounds under `k` left out): nothing is shown.
    Suppressed,
}

impl Group {
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            Group::Shown(s) => Some(s),
            Group::Suppressed => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    pub key: String,
    pub before: Group,
    pub after: Group,
    /// after − before with Welch's 95 % interval, when both groups are shown.
    pub change: Option<Welch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnpsComparison {
    pub key: String,
    pub before: Option<Enps>,
    pub after: Option<Enps>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KpiComparison {
    pub label: String,
    pub unit: String,
    pub direction: Direction,
    /// Mean of the KPI's first `baseline_rounds` periods.
    pub before: Option<f64>,
    pub before_periods: usize,
    /// Mean of its periods starting in the range (baseline periods excluded).
    pub after: Option<f64>,
    pub after_periods: usize,
    pub change: Option<f64>,
    pub improved: Option<bool>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiReport {
    pub program_id: String,
    pub program_name: String,
    pub timezone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub k: u32,
    pub baseline_rounds: u32,
    /// The local dates of the first and last baseline round.
    pub baseline_span: Option<(NaiveDate, NaiveDate)>,
    pub participation_before: Participation,
    pub participation_after: Participation,
    pub metrics: Vec<MetricComparison>,
    pub enps: Vec<EnpsComparison>,
    pub kpis: Vec<KpiComparison>,
    pub wins: Vec<NamedWin>,
    pub actions: Vec<ActionNote>,
    pub trend: TrendChart,
}

/// Reads and computes the report for `program` over the local dates `from..=to`.
pub async fn build_report(
    store: &Store,
    program: &Program,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<RoiReport, ReportError> {
    if from > to {
        return Err(ReportError::Range { from, to });
    }
    let tz = program.timezone;
    let local_date = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let rounds = store.report_rounds(&program.id).await?;
    let metrics = store.report_round_metrics(&program.id).await?;

    // Before: each survey's first baseline_rounds rounds. After: the range, minus those.
    let mut per_survey: BTreeMap<&str, usize> = BTreeMap::new();
    let mut baseline = Vec::new();
    for r in &rounds {
        let seen = per_survey.entry(r.survey_id.as_str()).or_default();
        if *seen < program.baseline_rounds.max(1) as usize {
            baseline.push(r.id);
        }
        *seen += 1;
    }
    let after: Vec<i64> = rounds
        .iter()
        .filter(|r| !baseline.contains(&r.id))
        .filter(|r| (from..=to).contains(&local_date(r.opened_at)))
        .map(|r| r.id)
        .collect();
    let k = program.anonymity_threshold;
    let round_k: BTreeMap<i64, u64> = rounds
        .iter()
        .map(|r| {
            let stored = r.anonymity_k.unwrap_or(0).max(0) as u64;
            (r.id, stored.max(u64::from(k)))
        })
        .collect();
    let baseline_dates: Vec<NaiveDate> = rounds
        .iter()
        .filter(|r| baseline.contains(&r.id))
        .map(|r| local_date(r.opened_at))
        .collect();

    let keys = |kind: &str| -> Vec<String> {
        let mut keys: Vec<String> = metrics
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.metric_key.clone())
            .collect();
        keys.dedup();
        keys.sort();
        keys.dedup();
        keys
    };
    let comparisons = keys("scale")
        .into_iter()
        .map(|key| {
            let before = group(&metrics, &key, &baseline, &round_k, k);
            let after = group(&metrics, &key, &after, &round_k, k);
            let change = match (before.summary(), after.summary()) {
                (Some(b), Some(a)) => welch_ci95(a, b),
                _ => None,
            };
            MetricComparison {
                key,
                before,
                after,
                change,
            }
        })
        .collect();
    let enps_rows = keys("enps")
        .into_iter()
        .map(|key| EnpsComparison {
            before: enps_of(&metrics, &key, &baseline, &round_k, k),
            after: enps_of(&metrics, &key, &after, &round_k, k),
            key,
        })
        .collect();

    let kpis = store
        .kpis(&program.id)
        .await?
        .into_iter()
        .map(|kpi| {
            let n = (program.baseline_rounds.max(1) as usize).min(kpi.values.len());
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let before: Vec<f64> = kpi.values[..n].iter().map(|v| v.value).collect();
            let after: Vec<f64> = kpi.values[n..]
                .iter()
                .filter(|v| (from..=to).contains(&v.period_start))
                .map(|v| v.value)
                .collect();
            let (b, a) = (mean(&before), mean(&after));
            let change = b.zip(a).map(|(b, a)| a - b);
            KpiComparison {
                label: kpi.definition.label.clone(),
                unit: kpi.definition.unit.clone(),
                direction: kpi.definition.direction,
                before: b,
                before_periods: before.len(),
                after: a,
                after_periods: after.len(),
                change,
                improved: change.and_then(|c| kpi.definition.direction.improved(c)),
            }
        })
        .collect();

    let start = local_midnight(program, from);
    let end = local_midnight(program, to + Duration::days(1));
    let wins = store.report_named_wins(&program.id, start, end).await?;
    let actions = store.report_actions(&program.id, start, end).await?;
    let participation = |ids: &[i64]| {
        rounds
            .iter()
            .filter(|r| ids.contains(&r.id))
            .fold(Participation::default(), |p, r| Participation {
                asked: p.asked + r.asked,
                answered: p.answered + r.answered,
                rounds: p.rounds + 1,
            })
    };
    let trend = trend_chart(program, &rounds, &metrics, &round_k, to, local_date);
    Ok(RoiReport {
        program_id: program.id.to_string(),
        program_name: program.name.clone(),
        timezone: tz.name().to_string(),
        from,
        to,
        k,
        baseline_rounds: program.baseline_rounds,
        baseline_span: baseline_dates
            .iter()
            .min()
            .copied()
            .zip(baseline_dates.iter().max().copied()),
        participation_before: participation(&baseline),
        participation_after: participation(&after),
        metrics: comparisons,
        enps: enps_rows,
        kpis,
        wins,
        actions,
        trend,
    })
}

/// The start of a local date in the program's zone (the first valid instant on a DST day).
fn local_midnight(program: &Program, date: NaiveDate) -> DateTime<Utc> {
    let tz = program.timezone;
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&date.and_hms_opt(h, 0, 0)?)
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// The rounds' answers to `key` whose round reached its `k`, combined; shown at `k` or more.
fn group(
    metrics: &[RoundMetric],
    key: &str,
    rounds: &[i64],
    round_k: &BTreeMap<i64, u64>,
    k: u32,
) -> Group {
    let (n, sum, sum_sq) = counted(metrics, key, rounds, round_k)
        .fold((0i64, 0.0, 0.0), |(n, s, q), m| {
            (n + m.n, s + m.sum, q + m.sum_sq)
        });
    match Summary::from_sums(n, sum, sum_sq) {
        Some(s) if s.n >= u64::from(k) => Group::Shown(s),
        _ => Group::Suppressed,
    }
}

fn enps_of(
    metrics: &[RoundMetric],
    key: &str,
    rounds: &[i64],
    round_k: &BTreeMap<i64, u64>,
    k: u32,
) -> Option<Enps> {
    let (n, promoters, detractors) = counted(metrics, key, rounds, round_k)
        .fold((0i64, 0i64, 0i64), |(n, p, d), m| {
            (n + m.n, p + m.promoters, d + m.detractors)
        });
    if n < i64::from(k) || n <= 0 {
        return None;
    }
    let passives = n - promoters - detractors;
    enps(promoters as u64, passives.max(0) as u64, detractors as u64)
}

/// The per-round sums of `key` in `rounds`, each round only when it reached its own `k`.
fn counted<'a>(
    metrics: &'a [RoundMetric],
    key: &'a str,
    rounds: &'a [i64],
    round_k: &'a BTreeMap<i64, u64>,
) -> impl Iterator<Item = &'a RoundMetric> {
    metrics.iter().filter(move |m| {
        m.metric_key == key
            && rounds.contains(&m.round_id)
            && m.n as u64 >= round_k.get(&m.round_id).copied().unwrap_or(u64::MAX)
    })
}

/// The scale metrics over the last rounds opened up to `to`, one point per round date; the
/// last point carries its mean's 95 % interval.
fn trend_chart(
    program: &Program,
    rounds: &[ReportRound],
    metrics: &[RoundMetric],
    round_k: &BTreeMap<i64, u64>,
    to: NaiveDate,
    local_date: impl Fn(DateTime<Utc>) -> NaiveDate,
) -> TrendChart {
    let mut dates: Vec<NaiveDate> = rounds
        .iter()
        .map(|r| local_date(r.opened_at))
        .filter(|d| *d <= to)
        .collect();
    dates.sort();
    dates.dedup();
    let dates: Vec<NaiveDate> = dates
        .iter()
        .rev()
        .take(TREND_ROUNDS)
        .rev()
        .copied()
        .collect();
    let mut keys: Vec<&str> = metrics
        .iter()
        .filter(|m| m.kind == "scale")
        .map(|m| m.metric_key.as_str())
        .collect();
    keys.sort();
    keys.dedup();
    let k = program.anonymity_threshold;
    let series = keys
        .into_iter()
        .map(|key| {
            let groups: Vec<Group> = dates
                .iter()
                .map(|date| {
                    let ids: Vec<i64> = rounds
                        .iter()
                        .filter(|r| local_date(r.opened_at) == *date)
                        .map(|r| r.id)
                        .collect();
                    group(metrics, key, &ids, round_k, k)
                })
                .collect();
            let ci95 = groups.last().and_then(Group::summary).and_then(|s| {
                (s.n >= 2).then(|| {
                    let half = t_quantile(0.975, s.n as f64 - 1.0) * (s.var / s.n as f64).sqrt();
                    (s.mean - half, s.mean + half)
                })
            });
            ChartSeries {
                label: key.to_string(),
                points: dates
                    .iter()
                    .zip(&groups)
                    .map(|(d, g)| {
                        (
                            d.format("%Y-%m-%d").to_string(),
                            g.summary().map(|s| s.mean),
                        )
                    })
                    .collect(),
                ci95,
            }
        })
        .collect();
    let mut chart = TrendChart::new(format!("{}: pulse trend up to {to}", program.name), series);
    chart.y_range = Some((1.0, 5.0));
    chart.y_label = "mean score (1–5)".into();
    chart
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{x:.2}")
    } else {
        format!("−{:.2}", -x)
    }
}

fn percent(p: &Participation) -> String {
    match p.rate() {
        Some(rate) => format!(
            "{:.0} % ({} of {} DMs, {} rounds)",
            rate * 100.0,
            p.answered,
            p.asked,
            p.rounds
        ),
        None => "no rounds".into(),
    }
}

fn number(x: f64, unit: &str) -> String {
    let text = if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    };
    if unit.is_empty() {
        text
    } else {
        format!("{text} {unit}")
    }
}

/// Markdown cells cannot hold a raw `|` or a line break.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl RoiReport {
    /// The page, in Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let k = self.k;
        let fewer = format!("fewer than {k} answers");
        let _ = writeln!(md, "# ROI summary: {}\n", cell(&self.program_name));
        let baseline = match self.baseline_span {
            Some((a, b)) if a == b => format!("the first round ({a})"),
            Some((a, b)) => format!(
                "the first {} rounds of each survey ({a} to {b})",
                self.baseline_rounds
            ),
            None => "no rounds yet".into(),
        };
        let _ = writeln!(
            md,
            "**After:** rounds opened {} to {} ({}). **Before:** the baseline, {baseline}.\n",
            self.from, self.to, self.timezone
        );

        let _ = writeln!(md, "## Participation\n");
        let _ = writeln!(md, "| | Before | After |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| Answered | {} | {} |\n",
            percent(&self.participation_before),
            percent(&self.participation_after)
        );

        let _ = writeln!(md, "## Pulse metrics\n");
        if self.metrics.is_empty() && self.enps.is_empty() {
            let _ = writeln!(md, "No answers to scale or eNPS questions yet.\n");
        } else {
            let _ = writeln!(
                md,
                "| Metric | Before | After | Change [95 % CI] | |\n|---|---|---|---|---|"
            );
            let shown = |g: &Group| match g {
                Group::Shown(s) => format!("{:.2} (n = {})", s.mean, s.n),
                Group::Suppressed => fewer.clone(),
            };
            for m in &self.metrics {
                let (change, verdict) = match &m.change {
                    Some(w) => (
                        format!(
                            "{} [{}, {}]",
                            signed(w.delta),
                            signed(w.ci95.lo),
                            signed(w.ci95.hi)
                        ),
                        if w.within_noise() {
                            "within noise"
                        } else if w.delta > 0.0 {
                            "up, more than noise"
                        } else {
                            "down, more than noise"
                        },
                    ),
                    None => ("–".into(), "not comparable"),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {change} | {verdict} |",
                    cell(&m.key),
                    shown(&m.before),
                    shown(&m.after)
                );
            }
            for e in &self.enps {
                let shown = |e: &Option<Enps>| match e {
                    Some(e) => format!("{:+.0} (n = {})", e.score, e.n),
                    None => fewer.clone(),
                };
                let change = match (&e.before, &e.after) {
                    (Some(b), Some(a)) => format!("{:+.0} points", a.score - b.score),
                    _ => "–".into(),
                };
                let _ = writeln!(
                    md,
                    "| {} (eNPS) | {} | {} | {change} | |",
                    cell(&e.key),
                    shown(&e.before),
                    shown(&e.after)
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Business KPIs\n");
        if self.kpis.is_empty() {
            let _ = writeln!(
                md,
                "No KPIs recorded (`PUT /api/v1/programs/{}/kpis` or `pulseloop kpi import`).\n",
                self.program_id
            );
        } else {
            let _ = writeln!(
                md,
                "| KPI | Better | Before | After | Change | |\n|---|---|---|---|---|---|"
            );
            for kpi in &self.kpis {
                let value = |v: Option<f64>, periods: usize| match v {
                    Some(v) => format!("{} ({periods} periods)", number(v, &kpi.unit)),
                    None => "no values".into(),
                };
                let verdict = match kpi.improved {
                    Some(true) => "better",
                    Some(false) => "worse",
                    None if kpi.change.is_some() => "unchanged",
                    None => "",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {verdict} |",
                    cell(&kpi.label),
                    match kpi.direction {
                        Direction::Higher => "higher",
                        Direction::Lower => "lower",
                    },
                    value(kpi.before, kpi.before_periods),
                    value(kpi.after, kpi.after_periods),
                    kpi.change
                        .map(|c| {
                            let n = number(c.abs(), &kpi.unit);
                            if c >= 0.0 {
                                format!("+{n}")
                            } else {
                                format!("−{n}")
                            }
                        })
                        .unwrap_or_else(|| "–".into()),
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Small wins (shared with the author's name)\n");
        if self.wins.is_empty() {
            let _ = writeln!(md, "None in this range.\n");
        } else {
            for w in &self.wins {
                let _ = writeln!(md, "- “{}” (<@{}>)", cell(&w.text), w.author);
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## You said, we did\n");
        if self.actions.is_empty() {
            let _ = writeln!(md, "No actions recorded in this range.\n");
        } else {
            for a in &self.actions {
                let tz: chrono_tz::Tz = self.timezone.parse().unwrap_or(chrono_tz::UTC);
                let date = a.created_at.with_timezone(&tz).date_naive();
                let _ = writeln!(md, "- {date}: {}", cell(&a.text));
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "![Pulse trend](trend.png)\n");
        let _ = writeln!(
            md,
            "*How to read this: a change is labelled within noise when its 95 % interval (Welch) \
             contains 0. Anonymity: a round counts towards a number only with at least {k} answers, \
             and no number from {fewer} is shown. Wins appear only when their author agreed to be named.*"
        );
        md
    }

    /// Writes `report.md` and `trend.png` into `dir` (created if needed).
    pub fn write_to(&self, dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
        std::fs::create_dir_all(dir)?;
        let png = render_trend_chart(&self.trend)?;
        let md_path = dir.join("report.md");
        let png_path = dir.join("trend.png");
        std::fs::write(&md_path, self.markdown())?;
        std::fs::write(&png_path, png)?;
        Ok((md_path, png_path))
    }
}
