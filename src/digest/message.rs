//! The digest as a Slack message: Block Kit for the sponsor channel and a text fallback.
//!
//! Order: header (program, period) · one plain headline sentence · participation with its
//! change · one line per metric (value, n, deltas with "within noise" or "more than noise",
//! sparkline) · eNPS · up to 3 comments · wins · "you said, we did" · what was folded ·
//! a context line with `k`. However many metrics, wins, actions or comments there are, it
//! stays within Slack's limits (`slack_facts::block_kit`): lists are cut with "and N more",
//! every text is cut to its field's limit, the total of blocks stays far under 50.

use serde_json::{json, Value};
use slack_facts::block_kit::{
    CONTEXT_TEXT_MAX, HEADER_TEXT_MAX, MAX_MARKDOWN_TOTAL, MAX_MESSAGE_BLOCKS, SECTION_TEXT_MAX,
};

use super::numbers::{range_of, Digest, Metric};
use crate::slack::protocol::{reply_button, ReplyHandle, SlackMessage};

/// Metric lines per section block, and sections of metric lines at most.
const METRICS_PER_SECTION: usize = 10;
const MAX_METRIC_SECTIONS: usize = 4;
const MAX_COMMENTS: usize = 3;
const MAX_WINS: usize = 10;
const MAX_ACTIONS: usize = 10;
const MAX_KPIS: usize = 10;
/// One comment, win or action is cut to this many characters.
const ITEM_MAX: usize = 280;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline over `range`; a hidden or missing value is a middle dot.
pub fn sparkline(values: &[Option<f64>], range: (f64, f64)) -> String {
    let (lo, hi) = range;
    values
        .iter()
        .map(|v| match v {
            Some(x) if hi > lo => {
                let f = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
                SPARKS[((f * 7.0).round() as usize).min(7)]
            }
            Some(_) => SPARKS[0],
            None => '·',
        })
        .collect()
}

/// `text` cut to `max` characters (Unicode scalar values, as Slack counts), with an ellipsis.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Markdown control characters in user text are neutralised so a comment cannot ping
/// `@channel`, link or format the digest.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{x:.2}")
    } else {
        format!("{x:.2}")
    }
}

fn noise(within: bool) -> &'static str {
    if within {
        "within noise"
    } else {
        "more than noise"
    }
}

fn value(m: &Metric, x: f64) -> String {
    if m.kind == "yes_no" {
        format!("{:.0} % yes", x * 100.0)
    } else {
        format!("{x:.1}")
    }
}

/// The sentence a sponsor reads first.
pub fn headline(d: &Digest) -> String {
    let shown = d.metrics.iter().find(|m| m.mean.is_some());
    let Some(m) = shown else {
        return if d.metrics.is_empty() {
            format!(
                "No scores this period; {} of {} people answered.",
                d.participation.answered, d.participation.asked
            )
        } else {
            format!(
                "Scores are not shown this period: {} per score.",
                super::numbers::fewer_than(d.k)
            )
        };
    };
    let mean = m.mean.unwrap_or_default();
    let mut s = format!("{} {} (n = {})", m.label, value(m, mean), m.n);
    let (delta, within, what) = match (m.delta_baseline, m.within_noise) {
        (Some(delta), Some(w)) => (delta, w, "the baseline"),
        _ => match (m.delta_previous, m.within_noise_previous) {
            (Some(delta), Some(w)) => (delta, w, "last period"),
            _ => {
                s.push_str(", the first period with enough answers to compare.");
                return s;
            }
        },
    };
    let direction = if delta > 0.0 {
        format!("up {:.1} on {what}", delta.abs())
    } else if delta < 0.0 {
        format!("down {:.1} on {what}", delta.abs())
    } else {
        format!("level with {what}")
    };
    s.push_str(&format!(", {direction}, {}.", noise(within)));
    s
}

fn metric_line(m: &Metric) -> String {
    let spark = sparkline(
        &m.trend.iter().map(|p| p.mean).collect::<Vec<_>>(),
        range_of(&m.kind),
    );
    let Some(mean) = m.mean else {
        return format!(
            "• *{}* — not shown ({}, n = {}) `{spark}`",
            escape(&m.label),
            "fewer than k answers",
            m.n
        );
    };
    let mut line = format!("• *{}* {} (n = {})", escape(&m.label), value(m, mean), m.n);
    if let (Some(d), Some(w)) = (m.delta_previous, m.within_noise_previous) {
        line.push_str(&format!(" · {} vs last period, {}", signed(d), noise(w)));
    }
    if let (Some(d), Some(ci), Some(w)) = (m.delta_baseline, m.ci95_baseline, m.within_noise) {
        line.push_str(&format!(
            " · {} vs baseline [{:.2}, {:.2}], {}",
            signed(d),
            ci[0],
            ci[1],
            noise(w)
        ));
    }
    if !m.roles.is_empty() && m.roles.len() > 1 {
        let roles: Vec<String> = m
            .roles
            .iter()
            .filter_map(|r| r.mean.map(|x| format!("{}s {}", r.role, value(m, x))))
            .collect();
        line.push_str(&format!(" · {}", roles.join(", ")));
    }
    line.push_str(&format!(" `{spark}`"));
    line
}

/// One KPI: latest value with its unit, against the baseline, and whether that is better.
fn kpi_line(k: &crate::storage::kpis::KpiSummary) -> String {
    use crate::storage::kpis::Direction;
    let label = escape(&cut(&k.label, ITEM_MAX));
    let unit = if k.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", escape(&k.unit))
    };
    let better = match k.direction {
        Direction::Higher => "higher is better",
        Direction::Lower => "lower is better",
    };
    match (&k.latest, k.baseline, k.change) {
        (Some(latest), Some(base), Some(change)) => {
            let verdict = match k.improved {
                Some(true) => "better",
                Some(false) => "worse",
                None => "level",
            };
            format!(
                "• *{label}* {}{unit} ({}), {} on the baseline {}{unit}: {verdict} ({better})",
                fmt_number(latest.value),
                latest.period_start.format("%-d %b"),
                signed_number(change),
                fmt_number(base),
            )
        }
        (None, Some(base), _) => format!(
            "• *{label}* baseline {}{unit}; no value since the baseline yet ({better})",
            fmt_number(base)
        ),
        _ => format!("• *{label}* not enough values for a baseline yet ({better})"),
    }
}

fn fmt_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn signed_number(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", fmt_number(x))
    } else {
        format!("−{}", fmt_number(-x))
    }
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(text, SECTION_TEXT_MAX) } })
}

fn more(n: usize) -> String {
    format!("_and {n} more_")
}

/// Up to `max` items as lines, then "and N more".
fn listed(title: &str, items: &[String], max: usize) -> String {
    let mut text = format!("*{title}*");
    for item in items.iter().take(max) {
        text.push('\n');
        text.push_str(item);
    }
    if items.len() > max {
        text.push('\n');
        text.push_str(&more(items.len() - max));
    }
    text
}

/// Renders the digest; also fills `headline`, `text` and `blocks` of `d`.
pub fn render(d: &mut Digest) -> SlackMessage {
    d.headline = headline(d);
    let mut blocks: Vec<Value> = Vec::new();
    blocks.push(json!({
        "type": "header",
        "text": { "type": "plain_text", "text": cut(&format!("{} · {}", d.program_name, d.period.label), HEADER_TEXT_MAX), "emoji": true }
    }));
    blocks.push(json!({ "type": "section", "text": { "type": "plain_text", "text": cut(&d.headline, SECTION_TEXT_MAX), "emoji": true } }));

    let p = &d.participation;
    let mut part = format!(
        "*Participation* {:.0} % ({} of {} answered)",
        p.rate * 100.0,
        p.answered,
        p.asked
    );
    if let Some(change) = p.change {
        let points = change * 100.0;
        part.push_str(&if points.abs() < 0.5 {
            ", level with last period".to_string()
        } else if points > 0.0 {
            format!(", up {points:.0} points on last period")
        } else {
            format!(", down {:.0} points on last period", points.abs())
        });
    }
    if !p.roles.is_empty() {
        let roles: Vec<String> = p
            .roles
            .iter()
            .map(|r| format!("{}s {:.0} %", r.role, r.rate * 100.0))
            .collect();
        part.push_str(&format!(" · {}", roles.join(", ")));
    }
    blocks.push(section(&part));

    if !d.metrics.is_empty() {
        blocks.push(json!({ "type": "divider" }));
        let lines: Vec<String> = d.metrics.iter().map(metric_line).collect();
        let shown = METRICS_PER_SECTION * MAX_METRIC_SECTIONS;
        for (i, chunk) in lines
            .chunks(METRICS_PER_SECTION)
            .take(MAX_METRIC_SECTIONS)
            .enumerate()
        {
            let mut text = if i == 0 {
                "*Scores* (last 8 periods as a sparkline)\n".to_string()
            } else {
                String::new()
            };
            text.push_str(&chunk.join("\n"));
            if i + 1 == MAX_METRIC_SECTIONS.min(lines.len().div_ceil(METRICS_PER_SECTION))
                && lines.len() > shown
            {
                text.push('\n');
                text.push_str(&more(lines.len() - shown));
            }
            blocks.push(section(&text));
        }
    }

    if !d.kpis.is_empty() {
        let items: Vec<String> = d.kpis.iter().map(kpi_line).collect();
        blocks.push(section(&listed(
            "Business results (KPIs, against their baseline)",
            &items,
            MAX_KPIS,
        )));
    }

    if let Some(e) = &d.enps {
        let text = match e.score {
            Some(score) => format!("*eNPS* {score:+.0} (n = {}): % of 9–10 minus % of 0–6", e.n),
            None => format!(
                "*eNPS* not shown ({}, n = {})",
                super::numbers::fewer_than(d.k),
                e.n
            ),
        };
        blocks.push(section(&text));
    }

    if !d.comments.is_empty() {
        // One section per comment shown, so a comment whose author allowed replies carries
        // its "Reply" button (the relay's random handle; no person).
        let shown = d.comments.len().min(MAX_COMMENTS);
        for (i, c) in d.comments.iter().take(shown).enumerate() {
            let mut text = if i == 0 {
                "*What people said (anonymous)*\n".to_string()
            } else {
                String::new()
            };
            text.push_str(&format!("> {}", escape(&cut(c, ITEM_MAX))));
            if i + 1 == shown && d.comments.len() > shown {
                text.push('\n');
                text.push_str(&more(d.comments.len() - shown));
            }
            let mut block = section(&text);
            let handle = d.comment_replies.get(i).cloned().flatten();
            if let Some(handle) = handle.and_then(|h| h.parse::<ReplyHandle>().ok()) {
                block["accessory"] = reply_button(&handle);
            }
            blocks.push(block);
        }
    }

    if !d.wins.is_empty() {
        let items: Vec<String> = d
            .wins
            .iter()
            .map(|w| match &w.author {
                Some(u) => format!(":tada: {} — <@{}>", escape(&cut(&w.text, ITEM_MAX)), u),
                None => format!(":tada: {}", escape(&cut(&w.text, ITEM_MAX))),
            })
            .collect();
        blocks.push(section(&listed("Small wins", &items, MAX_WINS)));
    }

    if !d.actions.is_empty() {
        let items: Vec<String> = d
            .actions
            .iter()
            .map(|a| format!("• {}", escape(&cut(a, ITEM_MAX))))
            .collect();
        blocks.push(section(&listed("You said, we did", &items, MAX_ACTIONS)));
    }

    if !d.folded.is_empty() {
        let text = format!("Not shown: {}", d.folded.join("; "));
        blocks.push(json!({ "type": "context", "elements": [
            { "type": "mrkdwn", "text": cut(&escape(&text), CONTEXT_TEXT_MAX) }
        ] }));
    }
    blocks.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!(
            "Anonymity: no number from fewer than {} answers (k = {}); no role breakdown that would let a group be worked out by subtraction; comments only from groups of {}+, shuffled, with no names or times. Deltas carry Welch's 95 % interval; a change whose interval contains 0 is within noise.",
            d.k, d.k, d.comment_threshold) }
    ] }));

    debug_assert!(blocks.len() <= MAX_MESSAGE_BLOCKS);
    debug_assert!(markdown_chars(&blocks) <= MAX_MARKDOWN_TOTAL);
    d.text = format!("{} · {}: {}", d.program_name, d.period.label, d.headline);
    d.blocks = blocks.clone();
    SlackMessage {
        text: d.text.clone(),
        blocks,
    }
}

/// A faithful text rendering of Block Kit blocks (header, sections, context, dividers), for
/// the terminal and for docs.
pub fn to_text(blocks: &[Value]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => {
                let t = b["text"]["text"].as_str().unwrap_or_default();
                out.push_str(&format!("{t}\n{}\n", "=".repeat(t.chars().count())));
            }
            Some("section") => {
                out.push_str(b["text"]["text"].as_str().unwrap_or_default());
                out.push_str("\n\n");
            }
            Some("divider") => out.push_str("----\n"),
            Some("context") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    out.push_str(&format!("({})\n", e["text"].as_str().unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    out
}

/// Characters in `markdown` blocks (this message has none; kept for the limit's sake).
fn markdown_chars(blocks: &[Value]) -> usize {
    blocks
        .iter()
        .filter(|b| b["type"] == "markdown")
        .filter_map(|b| b["text"].as_str())
        .map(|t| t.chars().count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_the_range_and_marks_hidden_points() {
        let s = sparkline(&[Some(1.0), Some(3.0), None, Some(5.0)], (1.0, 5.0));
        assert_eq!(s, "▁▅·█");
    }

    #[test]
    fn cut_counts_characters_not_bytes() {
        assert_eq!(cut("ééééé", 5), "ééééé");
        assert_eq!(cut("éééééé", 5), "éééé…");
    }
}
