//! From the raw groups SQL returns to the numbers a digest may show, with the anonymity rules
//! of PRODUCT.md applied to each (docs/digest.md):
//!
//! - a group's `k` is the largest of the program's `anonymity_threshold` and the `k` each of
//!   its rounds opened with; a mean, a delta, an interval, a distribution, an eNPS or a trend
//!   point over fewer than `k` answers is not shown, and a delta needs both sides at `k`
//!   (else the hidden side follows by subtraction);
//! - a role breakdown is shown only when every role group reaches `k`; an anonymous round
//!   sealed with its roles folded folds the breakdown too;
//! - comments come only from rounds with at least `comment_threshold` (and `k`) respondents,
//!   shuffled, with no name and no time;
//! - whatever was folded is said in words in `folded`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::period::Periods;
use crate::domain::stats::{self, Summary};
use crate::storage::digest::{DigestData, MetricSums, TREND};

/// What the numbers are computed for.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub program_id: &'a str,
    pub program_name: &'a str,
    pub tz: Tz,
    pub k: u32,
    pub comment_threshold: u32,
    /// Metric keys in the program's question order (others follow, sorted).
    pub metric_order: Vec<String>,
    pub periods: &'a Periods,
}

/// The digest as the preview JSON shape of PRODUCT.md (fields may be added, not renamed).
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub program: String,
    pub program_name: String,
    pub period: PeriodJson,
    pub k: u32,
    pub comment_threshold: u32,
    pub headline: String,
    pub participation: Participation,
    pub metrics: Vec<Metric>,
    pub enps: Option<EnpsJson>,
    pub comments: Vec<String>,
    /// Beside `comments`, in the same order: the reply handle of each comment whose author
    /// allowed an owner to reply (the digest's "Reply" button), else `None`.
    #[serde(skip)]
    pub comment_replies: Vec<Option<String>>,
    pub wins: Vec<Win>,
    pub actions: Vec<String>,
    /// Each business KPI's latest value against its baseline (owners' figures, not answers:
    /// no `k` applies), shown beside the pulse trends.
    pub kpis: Vec<crate::storage::kpis::KpiSummary>,
    /// What was folded or withheld, in words.
    pub folded: Vec<String>,
    /// The per-metric trend as plain data (for the chart).
    #[serde(skip)]
    pub trends: Vec<TrendSeries>,
    /// The notification text (fallback of the Block Kit message).
    pub text: String,
    pub blocks: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodJson {
    pub start: String,
    pub end: String,
    /// A human label in the program's zone ("4 Jan – 11 Jan 2027").
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Participation {
    pub asked: i64,
    pub answered: i64,
    pub rate: f64,
    pub previous: Option<ParticipationTotals>,
    /// Change of the rate against the previous period (in rate units, 0.05 = 5 points).
    pub change: Option<f64>,
    pub roles: Vec<RoleParticipation>,
    pub roles_folded: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipationTotals {
    pub asked: i64,
    pub answered: i64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleParticipation {
    pub role: String,
    pub asked: i64,
    pub answered: i64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub key: String,
    pub label: String,
    pub kind: String,
    pub n: i64,
    pub mean: Option<f64>,
    pub suppressed: bool,
    pub delta_previous: Option<f64>,
    pub ci95_previous: Option<[f64; 2]>,
    pub within_noise_previous: Option<bool>,
    pub delta_baseline: Option<f64>,
    pub ci95_baseline: Option<[f64; 2]>,
    /// The baseline delta's interval contains 0.
    pub within_noise: Option<bool>,
    pub baseline_n: i64,
    pub distribution: Vec<ValueShare>,
    pub trend: Vec<TrendPoint>,
    pub roles: Vec<RoleMetric>,
    pub roles_folded: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValueShare {
    pub value: f64,
    pub n: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub period: String,
    pub n: i64,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleMetric {
    pub role: String,
    pub n: i64,
    pub mean: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnpsJson {
    pub n: i64,
    pub score: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Win {
    pub text: String,
    pub author: Option<String>,
}

/// One metric's trend as plain data, for the chart (`digest::chart`, brief C): the last
/// periods' labels and means (`None` where hidden), and the current period's 95 % interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendSeries {
    pub key: String,
    pub label: String,
    pub points: Vec<(String, Option<f64>)>,
    pub current_ci: Option<(f64, f64)>,
    /// The value range of the metric's kind (1–5, 0–10, 0–1), for axes and sparklines.
    pub range: (f64, f64),
}

/// "coaching_value" → "Coaching value"; "program_enps" → "Program eNPS".
pub fn label_of(key: &str) -> String {
    let words: Vec<String> = key
        .split(['_', '-'])
        .map(|w| {
            if w.eq_ignore_ascii_case("enps") {
                "eNPS".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let words = words.join(" ");
    if words.starts_with("eNPS") {
        return words;
    }
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The value range of a question kind.
pub fn range_of(kind: &str) -> (f64, f64) {
    match kind {
        "enps" => (0.0, 10.0),
        "yes_no" => (0.0, 1.0),
        _ => (1.0, 5.0),
    }
}

pub fn fewer_than(k: u32) -> String {
    format!("fewer than {k} answers")
}

fn rate(answered: i64, asked: i64) -> f64 {
    if asked > 0 {
        answered as f64 / asked as f64
    } else {
        0.0
    }
}

/// A group of answers: summed over roles, with its `k`.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    n: i64,
    sum: f64,
    sum_sq: f64,
    k: i64,
}

impl Group {
    fn add(&mut self, r: &MetricSums) {
        self.n += r.n;
        self.sum += r.sum;
        self.sum_sq += r.sum_sq;
        self.k = self.k.max(r.k);
    }
    fn summary(&self) -> Option<Summary> {
        Summary::from_sums(self.n, self.sum, self.sum_sq)
    }
    /// Shown only at `k` answers (the program's and every round's).
    fn shown(&self, program_k: u32) -> Option<Summary> {
        let k = self.k.max(i64::from(program_k));
        if self.n >= k {
            self.summary()
        } else {
            None
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn instant(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Applies the rules to the raw data. `rng` shuffles the comments.
pub fn compute(ctx: &Context<'_>, data: DigestData, rng: &mut fastrand::Rng) -> Digest {
    let k = ctx.k;
    let mut folded: Vec<String> = Vec::new();
    let current = ctx.periods.current();
    let labels: Vec<String> = ctx
        .periods
        .starts()
        .iter()
        .map(|t| t.with_timezone(&ctx.tz).format("%-d %b").to_string())
        .collect();

    // Metrics: groups per (key, bucket), per (key, role) in the current bucket, baseline.
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut by_bucket: HashMap<(String, i64), Group> = HashMap::new();
    let mut by_role: HashMap<String, BTreeMap<String, Group>> = HashMap::new();
    for r in &data.metrics {
        kinds
            .entry(r.metric_key.clone())
            .or_insert_with(|| r.kind.clone());
        by_bucket
            .entry((r.metric_key.clone(), r.bucket))
            .or_default()
            .add(r);
        if r.bucket == TREND as i64 - 1 {
            by_role
                .entry(r.metric_key.clone())
                .or_default()
                .entry(r.role.clone())
                .or_default()
                .add(r);
        }
    }
    let mut baseline: HashMap<String, Group> = HashMap::new();
    for r in &data.baseline {
        kinds
            .entry(r.metric_key.clone())
            .or_insert_with(|| r.kind.clone());
        baseline.entry(r.metric_key.clone()).or_default().add(r);
    }
    let mut keys: Vec<String> = ctx
        .metric_order
        .iter()
        .filter(|key| kinds.contains_key(*key))
        .cloned()
        .collect();
    for key in kinds.keys() {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    let mut metrics = Vec::new();
    let mut trends = Vec::new();
    let mut enps_counts = (0i64, 0i64, 0i64);
    let mut enps_group = Group::default();
    for key in &keys {
        let kind = kinds.get(key).cloned().unwrap_or_default();
        let label = label_of(key);
        let group = |bucket: usize| {
            by_bucket
                .get(&(key.clone(), bucket as i64))
                .copied()
                .unwrap_or_default()
        };
        let now_group = group(TREND - 1);
        let now = now_group.shown(k);
        let prev = group(TREND - 2).shown(k);
        let base_group = baseline.get(key).copied().unwrap_or_default();
        let base = base_group.shown(k);
        let vs_prev = now.zip(prev).and_then(|(a, b)| stats::welch_ci95(&a, &b));
        let vs_base = now.zip(base).and_then(|(a, b)| stats::welch_ci95(&a, &b));
        if now.is_none() && now_group.n > 0 {
            folded.push(format!("{label}: {}, not shown", fewer_than(k)));
        }

        let trend: Vec<TrendPoint> = (0..TREND)
            .map(|i| {
                let g = group(i);
                TrendPoint {
                    period: labels[i].clone(),
                    n: g.n,
                    mean: g.shown(k).map(|s| round2(s.mean)),
                }
            })
            .collect();
        trends.push(TrendSeries {
            key: key.clone(),
            label: label.clone(),
            points: trend.iter().map(|p| (p.period.clone(), p.mean)).collect(),
            current_ci: now.and_then(|s| s.mean_ci95()).map(|ci| (ci.lo, ci.hi)),
            range: range_of(&kind),
        });

        let distribution = if now.is_some() {
            let mut d: Vec<ValueShare> = data
                .distribution
                .iter()
                .filter(|v| &v.metric_key == key)
                .map(|v| ValueShare {
                    value: v.value,
                    n: v.n,
                })
                .collect();
            d.sort_by(|a, b| a.value.total_cmp(&b.value));
            if kind == "enps" {
                for v in &d {
                    match v.value {
                        x if x >= 9.0 => enps_counts.0 += v.n,
                        x if x >= 7.0 => enps_counts.1 += v.n,
                        _ => enps_counts.2 += v.n,
                    }
                }
            }
            d
        } else {
            Vec::new()
        };
        if kind == "enps" {
            enps_group.n += now_group.n;
            enps_group.k = enps_group.k.max(now_group.k);
        }

        let (roles, roles_folded) = match (now, by_role.get(key)) {
            (Some(_), Some(groups)) => role_breakdown(groups, k, &label, &mut folded),
            _ => (Vec::new(), None),
        };

        metrics.push(Metric {
            key: key.clone(),
            label,
            kind,
            n: now_group.n,
            mean: now.map(|s| round2(s.mean)),
            suppressed: now.is_none(),
            delta_previous: vs_prev.map(|w| round2(w.delta)),
            ci95_previous: vs_prev.map(|w| [round2(w.ci95.lo), round2(w.ci95.hi)]),
            within_noise_previous: vs_prev.map(|w| w.within_noise()),
            delta_baseline: vs_base.map(|w| round2(w.delta)),
            ci95_baseline: vs_base.map(|w| [round2(w.ci95.lo), round2(w.ci95.hi)]),
            within_noise: vs_base.map(|w| w.within_noise()),
            baseline_n: base_group.n,
            distribution,
            trend,
            roles,
            roles_folded,
        });
    }

    let enps = if enps_group.n == 0 {
        None
    } else if enps_group.n >= enps_group.k.max(i64::from(k)) {
        let e = stats::enps(
            enps_counts.0 as u64,
            enps_counts.1 as u64,
            enps_counts.2 as u64,
        );
        Some(EnpsJson {
            n: enps_group.n,
            score: e.map(|e| e.score.round()),
            suppressed: false,
        })
    } else {
        folded.push(format!("eNPS: {}, not shown", fewer_than(k)));
        Some(EnpsJson {
            n: enps_group.n,
            score: None,
            suppressed: true,
        })
    };

    let participation = participation(&data, k, &mut folded);
    let (comments, comment_replies): (Vec<String>, Vec<Option<String>>) =
        comments(&data, ctx.comment_threshold, k, rng, &mut folded)
            .into_iter()
            .unzip();

    Digest {
        program: ctx.program_id.to_string(),
        program_name: ctx.program_name.to_string(),
        period: PeriodJson {
            start: instant(current.start, ctx.tz),
            end: instant(current.end, ctx.tz),
            label: format!(
                "{} – {}",
                current.start.with_timezone(&ctx.tz).format("%-d %b"),
                current.end.with_timezone(&ctx.tz).format("%-d %b %Y")
            ),
        },
        k,
        comment_threshold: ctx.comment_threshold,
        headline: String::new(),
        participation,
        metrics,
        enps,
        comments,
        comment_replies,
        wins: data
            .wins
            .into_iter()
            .map(|w| Win {
                text: w.text,
                author: w.author,
            })
            .collect(),
        actions: data.actions,
        kpis: Vec::new(),
        folded,
        trends,
        text: String::new(),
        blocks: Vec::new(),
    }
}

/// Roles of one metric in the current period: all shown, or none (and why).
fn role_breakdown(
    groups: &BTreeMap<String, Group>,
    k: u32,
    label: &str,
    folded: &mut Vec<String>,
) -> (Vec<RoleMetric>, Option<String>) {
    if groups.contains_key(crate::storage::rounds::FOLDED_ROLE) {
        let why =
            "roles were folded when the answers were sealed (a role had fewer than k answers)"
                .replace("k answers", &format!("{k} answers"));
        folded.push(format!("{label}: {why}"));
        return (Vec::new(), Some(why));
    }
    if let Some((role, _)) = groups.iter().find(|(_, g)| g.n < g.k.max(i64::from(k))) {
        let why = format!(
            "no breakdown by role: {} from {role}s, so the other role could be worked out",
            fewer_than(k)
        );
        folded.push(format!("{label}: {why}"));
        return (Vec::new(), Some(why));
    }
    let roles = groups
        .iter()
        .map(|(role, g)| {
            let s = g.shown(k);
            RoleMetric {
                role: role.clone(),
                n: g.n,
                mean: s.map(|s| round2(s.mean)),
                suppressed: s.is_none(),
            }
        })
        .collect();
    (roles, None)
}

fn participation(data: &DigestData, k: u32, folded: &mut Vec<String>) -> Participation {
    let totals = |current: i64| {
        let (asked, answered) = data
            .rounds
            .iter()
            .filter(|r| r.current == current)
            .fold((0, 0), |(a, b), r| (a + r.asked, b + r.answered));
        ParticipationTotals {
            asked,
            answered,
            rate: rate(answered, asked),
        }
    };
    let now = totals(1);
    let prev = totals(0);
    let has_previous = data.rounds.iter().any(|r| r.current == 0) && prev.asked > 0;

    // Per role: asked from deliveries; answered from deliveries (open rounds) or from the
    // sealed round's answers.
    let mut roles: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut role_folded = false;
    for r in data.roles.iter().filter(|r| r.current == 1) {
        let e = roles.entry(r.role.clone()).or_default();
        e.0 += r.asked;
        if r.sealed == 0 {
            e.1 += r.answered;
        }
    }
    let current_sealed: Vec<i64> = data
        .rounds
        .iter()
        .filter(|r| r.current == 1 && r.sealed == 1)
        .map(|r| r.round_id)
        .collect();
    for s in data
        .sealed_roles
        .iter()
        .filter(|s| current_sealed.contains(&s.round_id))
    {
        match roles.get_mut(&s.role) {
            Some(e) => e.1 += s.answered,
            None => role_folded = true,
        }
    }
    let k_now = data
        .rounds
        .iter()
        .filter(|r| r.current == 1)
        .map(|r| r.k)
        .max()
        .unwrap_or(0)
        .max(i64::from(k));
    let roles_folded = if roles.len() < 2 {
        None
    } else if role_folded {
        Some("participation by role is folded: the answers were sealed with roles folded".into())
    } else if roles.values().any(|(_, answered)| *answered < k_now) {
        Some(format!(
            "participation by role is folded: a role has {}",
            fewer_than(k)
        ))
    } else {
        None
    };
    if let Some(why) = &roles_folded {
        folded.push(why.clone());
    }
    let roles = if roles_folded.is_some() || roles.len() < 2 {
        Vec::new()
    } else {
        roles
            .into_iter()
            .map(|(role, (asked, answered))| RoleParticipation {
                role,
                asked,
                answered,
                rate: rate(answered, asked),
            })
            .collect()
    };
    Participation {
        asked: now.asked,
        answered: now.answered,
        rate: now.rate,
        change: has_previous.then_some(now.rate - prev.rate),
        previous: has_previous.then_some(prev),
        roles,
        roles_folded,
    }
}

fn comments(
    data: &DigestData,
    threshold: u32,
    k: u32,
    rng: &mut fastrand::Rng,
    folded: &mut Vec<String>,
) -> Vec<(String, Option<String>)> {
    let respondents: HashMap<i64, (i64, i64)> = data
        .rounds
        .iter()
        .filter(|r| r.current == 1)
        .map(|r| (r.round_id, (r.answered, r.k)))
        .collect();
    let mut shown = Vec::new();
    let mut withheld = 0;
    for c in &data.comments {
        let (answered, round_k) = respondents.get(&c.round_id).copied().unwrap_or((0, 0));
        let needed = i64::from(threshold).max(i64::from(k)).max(round_k);
        if answered >= needed {
            shown.push((c.text.clone(), c.reply_handle.clone()));
        } else {
            withheld += 1;
        }
    }
    rng.shuffle(&mut shown);
    if withheld > 0 {
        folded.push(format!(
            "{withheld} comment{} not shown: fewer than {threshold} people answered",
            if withheld == 1 { "" } else { "s" }
        ));
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_read_as_words() {
        assert_eq!(super::label_of("coaching_value"), "Coaching value");
        assert_eq!(super::label_of("enps"), "eNPS");
        assert_eq!(super::label_of("program_enps"), "Program eNPS");
    }
}
