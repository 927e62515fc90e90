//! Slack's mrkdwn as HTML, the way a Slack client draws it for one member: `*bold*`,
//! `_italic_`, `~strike~`, `` `code` ``, code blocks, `>` quotes, links `<url|text>`,
//! `<@U…>` mentions by display name, `<#C…>` channels, `<!here>`, `<!date^…>` in the member's
//! zone, emoji shortcodes, and Slack's escaping (`&amp; &lt; &gt;` arrive encoded).

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

use super::emoji;

/// Who is looking, and what the workspace's ids stand for.
pub(crate) struct Viewer {
    pub tz: Tz,
    pub now: DateTime<Utc>,
    /// User id → display name.
    pub users: HashMap<String, String>,
    /// Channel id → name.
    pub channels: HashMap<String, String>,
}

impl Viewer {
    #[cfg(test)]
    pub(crate) fn at(tz: Tz, now: DateTime<Utc>) -> Self {
        Self {
            tz,
            now,
            users: HashMap::new(),
            channels: HashMap::new(),
        }
    }
}

/// Text for an HTML element or attribute.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// A `plain_text` object's text: shown as typed, emoji shortcodes drawn when `emoji` is on
/// (Slack's default).
pub(crate) fn plain(text: &str, emoji_on: bool) -> String {
    if !emoji_on {
        return esc(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ':' {
            if let Some((html, next)) = emoji_at(&chars, i) {
                out.push_str(&html);
                i = next;
                continue;
            }
        }
        push_escaped(&mut out, chars[i]);
        i += 1;
    }
    out
}

/// A text object (`plain_text` or `mrkdwn`) as HTML.
pub(crate) fn text_object(v: &serde_json::Value, viewer: &Viewer) -> String {
    let text = v.get("text").and_then(|t| t.as_str()).unwrap_or("");
    match v.get("type").and_then(|t| t.as_str()) {
        Some("mrkdwn") => mrkdwn(text, viewer),
        _ => plain(
            text,
            v.get("emoji").and_then(|e| e.as_bool()).unwrap_or(true),
        ),
    }
}

/// One piece of a line: a character still subject to formatting, or finished HTML.
#[derive(Debug, Clone)]
enum Item {
    Ch(char),
    Html(String),
}

/// mrkdwn text as HTML for `viewer`.
pub(crate) fn mrkdwn(text: &str, viewer: &Viewer) -> String {
    let items = atomize(text, viewer);
    let lines: Vec<&[Item]> = items.split(|item| matches!(item, Item::Ch('\n'))).collect();
    let mut out = String::new();
    let last = lines.len().saturating_sub(1);
    for (n, line) in lines.into_iter().enumerate() {
        if let Some(Item::Ch('>')) = line.first() {
            let rest = match line.get(1) {
                Some(Item::Ch(' ')) => &line[2..],
                _ => &line[1..],
            };
            out.push_str("<blockquote>");
            out.push_str(&render(rest));
            out.push_str("</blockquote>");
            continue;
        }
        out.push_str(&render(line));
        if n < last {
            out.push_str("<br>");
        }
    }
    out
}

fn starts_with(chars: &[char], at: usize, pattern: &str) -> bool {
    pattern
        .chars()
        .enumerate()
        .all(|(k, p)| chars.get(at + k) == Some(&p))
}

fn find(chars: &[char], from: usize, pattern: &str) -> Option<usize> {
    (from..chars.len()).find(|&i| starts_with(chars, i, pattern))
}

/// Slack's three entities, decoded (anything else stays as written).
fn decode(chars: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, len) = entity_at(chars, i);
        out.push(c);
        i += len;
    }
    out
}

fn entity_at(chars: &[char], i: usize) -> (char, usize) {
    for (entity, c) in [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')] {
        if starts_with(chars, i, entity) {
            return (c, entity.len());
        }
    }
    (chars[i], 1)
}

/// `:name:` at `i` when `name` is a known emoji: its HTML and the index after it.
fn emoji_at(chars: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i + 1;
    while j < chars.len()
        && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '+' | '-'))
    {
        j += 1;
    }
    if j == i + 1 || chars.get(j) != Some(&':') {
        return None;
    }
    let name: String = chars[i + 1..j].iter().collect();
    let glyph = emoji::lookup(&name)?;
    Some((
        format!("<span class=emoji title=\":{name}:\">{glyph}</span>"),
        j + 1,
    ))
}

fn atomize(text: &str, viewer: &Viewer) -> Vec<Item> {
    let chars: Vec<char> = text.chars().collect();
    let mut items = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if starts_with(&chars, i, "```") {
            if let Some(end) = find(&chars, i + 3, "```") {
                let body = decode(&chars[i + 3..end]);
                let body = body.strip_prefix('\n').unwrap_or(&body);
                items.push(Item::Html(format!("<pre>{}</pre>", esc(body))));
                i = end + 3;
                continue;
            }
        }
        match chars[i] {
            '`' => {
                let end = (i + 1..chars.len())
                    .take_while(|&j| chars[j] != '\n')
                    .find(|&j| chars[j] == '`');
                if let Some(end) = end.filter(|&end| end > i + 1) {
                    let body = decode(&chars[i + 1..end]);
                    items.push(Item::Html(format!("<code>{}</code>", esc(&body))));
                    i = end + 1;
                    continue;
                }
            }
            '<' => {
                if let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == '>') {
                    let inner: String = chars[i + 1..end].iter().collect();
                    items.push(Item::Html(control(&inner, viewer)));
                    i = end + 1;
                    continue;
                }
            }
            ':' => {
                if let Some((html, next)) = emoji_at(&chars, i) {
                    items.push(Item::Html(html));
                    i = next;
                    continue;
                }
            }
            '&' => {
                let (c, len) = entity_at(&chars, i);
                items.push(Item::Ch(c));
                i += len;
                continue;
            }
            _ => {}
        }
        items.push(Item::Ch(chars[i]));
        i += 1;
    }
    items
}

/// A `<…>` control sequence: a link, a mention, a channel, a special mention or a date.
fn control(inner: &str, viewer: &Viewer) -> String {
    let decoded = decode(&inner.chars().collect::<Vec<_>>());
    let (target, label) = match decoded.split_once('|') {
        Some((t, l)) => (t.to_string(), Some(l.to_string())),
        None => (decoded.clone(), None),
    };
    if let Some(id) = target.strip_prefix('@') {
        let name = viewer
            .users
            .get(id)
            .cloned()
            .or(label)
            .unwrap_or_else(|| id.to_string());
        return format!(
            "<span class=mention data-user=\"{}\">@{}</span>",
            esc(id),
            esc(&name)
        );
    }
    if let Some(id) = target.strip_prefix('#') {
        let name = viewer
            .channels
            .get(id)
            .cloned()
            .or(label)
            .unwrap_or_else(|| id.to_string());
        return format!("<span class=mention>#{}</span>", esc(&name));
    }
    if let Some(special) = target.strip_prefix('!') {
        return special_mention(special, label.as_deref(), viewer);
    }
    let text = label.unwrap_or_else(|| target.clone());
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        format!(
            "<a href=\"{}\" target=_blank rel=noopener>{}</a>",
            esc(&target),
            plain(&text, true)
        )
    } else {
        esc(&text)
    }
}

fn special_mention(special: &str, label: Option<&str>, viewer: &Viewer) -> String {
    let mut parts = special.split('^');
    let kind = parts.next().unwrap_or("");
    match kind {
        "here" | "channel" | "everyone" => format!("<span class=mention>@{kind}</span>"),
        "subteam" => {
            let id = parts.next().unwrap_or("");
            let name = label.map_or_else(|| format!("@{id}"), str::to_string);
            format!("<span class=mention>{}</span>", esc(&name))
        }
        "date" => {
            let ts = parts.next().and_then(|t| t.parse::<i64>().ok());
            let format = parts.next();
            let link = parts.next();
            let fallback = label.unwrap_or("");
            let (Some(ts), Some(format)) = (ts, format) else {
                return esc(fallback);
            };
            let Some(text) = format_date(ts, format, viewer) else {
                return esc(fallback);
            };
            let lower = link.map(str::to_ascii_lowercase).unwrap_or_default();
            match link {
                Some(url) if lower.starts_with("http://") || lower.starts_with("https://") => {
                    format!(
                        "<a href=\"{}\" target=_blank rel=noopener>{}</a>",
                        esc(url),
                        esc(&text)
                    )
                }
                _ => format!("<time>{}</time>", esc(&text)),
            }
        }
        _ => esc(label.unwrap_or(special)),
    }
}

fn ordinal(day: u32) -> String {
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{day}{suffix}")
}

/// `<!date^ts^format|fallback>`'s format with Slack's tokens, in the viewer's zone; `None`
/// for a timestamp out of range (the fallback is shown then, as in Slack).
pub(crate) fn format_date(ts: i64, format: &str, viewer: &Viewer) -> Option<String> {
    let at = viewer.tz.timestamp_opt(ts, 0).single()?;
    let today = viewer.now.with_timezone(&viewer.tz).date_naive();
    let date = at.format("%B ").to_string() + &ordinal(at.day()) + &at.format(", %Y").to_string();
    let date_short = at.format("%b %-d, %Y").to_string();
    let date_long =
        at.format("%A, %B ").to_string() + &ordinal(at.day()) + &at.format(", %Y").to_string();
    let pretty = |otherwise: &str| match (at.date_naive() - today).num_days() {
        0 => "Today".to_string(),
        -1 => "Yesterday".to_string(),
        1 => "Tomorrow".to_string(),
        _ => otherwise.to_string(),
    };
    let ago = ago(ts - viewer.now.timestamp());
    let tokens = [
        ("{date_num}", at.format("%Y-%m-%d").to_string()),
        ("{date_short_pretty}", pretty(&date_short)),
        ("{date_long_pretty}", pretty(&date_long)),
        ("{date_pretty}", pretty(&date)),
        ("{date_short}", date_short.clone()),
        ("{date_long}", date_long.clone()),
        ("{date}", date.clone()),
        ("{time_secs}", at.format("%-I:%M:%S %p").to_string()),
        ("{time}", at.format("%-I:%M %p").to_string()),
        ("{ago}", ago),
    ];
    let mut out = format.to_string();
    for (token, value) in tokens {
        out = out.replace(token, &value);
    }
    Some(out)
}

fn ago(delta_secs: i64) -> String {
    let n = delta_secs.abs();
    let (count, unit) = match n {
        0..=59 => (n, "second"),
        60..=3599 => (n / 60, "minute"),
        3600..=86_399 => (n / 3600, "hour"),
        86_400..=2_591_999 => (n / 86_400, "day"),
        2_592_000..=31_535_999 => (n / 2_592_000, "month"),
        _ => (n / 31_536_000, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if delta_secs <= 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// Renders items, turning `*…*`, `_…_` and `~…~` into bold, italic and strike where Slack
/// would: the opening mark starts a word and is followed by a non-space, the closing one
/// follows a non-space and ends a word, both on one line.
fn render(items: &[Item]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Html(html) => out.push_str(html),
            Item::Ch(c @ ('*' | '_' | '~')) => {
                if let Some(end) = opens(items, i).then(|| closing(items, i, *c)).flatten() {
                    let tag = match c {
                        '*' => "b",
                        '_' => "i",
                        _ => "s",
                    };
                    out.push_str(&format!("<{tag}>{}</{tag}>", render(&items[i + 1..end])));
                    i = end + 1;
                    continue;
                }
                push_escaped(&mut out, *c);
            }
            Item::Ch(c) => push_escaped(&mut out, *c),
        }
        i += 1;
    }
    out
}

fn is_word(item: Option<&Item>) -> bool {
    matches!(item, Some(Item::Ch(c)) if c.is_alphanumeric())
}

fn is_space(item: Option<&Item>) -> bool {
    matches!(item, Some(Item::Ch(c)) if c.is_whitespace())
}

fn opens(items: &[Item], i: usize) -> bool {
    let before = i.checked_sub(1).and_then(|b| items.get(b));
    let after = items.get(i + 1);
    !is_word(before) && after.is_some() && !is_space(after)
}

fn closing(items: &[Item], open: usize, mark: char) -> Option<usize> {
    for j in open + 2..items.len() {
        match &items[j] {
            Item::Ch('\n') => return None,
            Item::Ch(c)
                if *c == mark && !is_space(items.get(j - 1)) && !is_word(items.get(j + 1)) =>
            {
                return Some(j);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer {
        let now = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
        let mut v = Viewer::at(chrono_tz::Europe::Berlin, now);
        v.users.insert("U0ADA".into(), "Ada Lovelace".into());
        v.channels.insert("C0SPONSORS".into(), "sponsors".into());
        v
    }

    fn md(text: &str) -> String {
        mrkdwn(text, &viewer())
    }

    #[test]
    fn bold_italic_strike_and_nesting() {
        assert_eq!(md("*bold*"), "<b>bold</b>");
        assert_eq!(md("an _italic_ word"), "an <i>italic</i> word");
        assert_eq!(md("~gone~"), "<s>gone</s>");
        assert_eq!(md("*bold _and italic_*"), "<b>bold <i>and italic</i></b>");
        assert_eq!(md("week: *4*."), "week: <b>4</b>.");
    }

    #[test]
    fn marks_inside_words_or_next_to_spaces_stay_literal() {
        assert_eq!(md("snake_case_name"), "snake_case_name");
        assert_eq!(md("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(md("* not bold*"), "* not bold*");
        assert_eq!(md("*open"), "*open");
        assert_eq!(md("*two\nlines*"), "*two<br>lines*");
    }

    #[test]
    fn code_spans_and_blocks_are_not_formatted() {
        assert_eq!(md("run `*x*` now"), "run <code>*x*</code> now");
        assert_eq!(md("```\n*a* &lt;b&gt;\n```"), "<pre>*a* &lt;b&gt;\n</pre>");
    }

    #[test]
    fn slack_escapes_are_decoded_once_and_html_is_escaped() {
        assert_eq!(md("Q&amp;A &lt;3 &gt; 2"), "Q&amp;A &lt;3 &gt; 2");
        assert_eq!(md("&amp;lt;"), "&amp;lt;", "decoded once only");
        assert_eq!(md("a \"quote\""), "a &quot;quote&quot;");
        assert!(!md("<script>").contains("<script>"));
    }

    #[test]
    fn links_mentions_and_channels() {
        assert_eq!(
            md("<https://example.com/a?b=1&amp;c=2|the docs>"),
            "<a href=\"https://example.com/a?b=1&amp;c=2\" target=_blank rel=noopener>the docs</a>"
        );
        assert!(md("<https://example.com>").contains(">https://example.com</a>"));
        assert!(
            !md("<javascript:alert(1)|x>").contains("href"),
            "only web and mail links are links"
        );
        assert_eq!(
            md("hi <@U0ADA>"),
            "hi <span class=mention data-user=\"U0ADA\">@Ada Lovelace</span>"
        );
        assert!(md("<@U0GONE|grace>").contains("@grace"));
        assert!(md("<@U0NOBODY>").contains("@U0NOBODY"));
        assert!(md("<#C0SPONSORS>").contains("#sponsors"));
        assert!(md("<!here> look").contains("@here"));
        assert!(md("<!subteam^S01|@leads>").contains("@leads"));
    }

    #[test]
    fn emoji_shortcodes_become_emoji_and_unknown_ones_stay() {
        assert_eq!(
            md(":lock: Anonymous"),
            "<span class=emoji title=\":lock:\">🔒</span> Anonymous"
        );
        assert!(md(":white_check_mark: done").contains("✅"));
        assert!(
            !md(":white_check_mark:").contains("<i>"),
            "underscores in a shortcode are not italics"
        );
        assert_eq!(md(":not_an_emoji:"), ":not_an_emoji:");
        assert_eq!(md("10:00:30"), "10:00:30");
        assert_eq!(
            plain(":x: Cancel & go", true),
            "<span class=emoji title=\":x:\">❌</span> Cancel &amp; go"
        );
        assert_eq!(plain(":x:", false), ":x:");
    }

    #[test]
    fn quotes_are_blocks() {
        assert_eq!(
            md("&gt; quoted\nplain"),
            "<blockquote>quoted</blockquote>plain"
        );
    }

    #[test]
    fn dates_follow_the_viewers_zone_and_slacks_tokens() {
        // 2027-01-04 09:00 UTC is 10:00 in Berlin, 04:00 in New York.
        let ts = Utc
            .with_ymd_and_hms(2027, 1, 4, 9, 0, 0)
            .unwrap()
            .timestamp();
        let berlin = viewer();
        assert_eq!(
            format_date(ts, "{date_short} at {time}", &berlin).unwrap(),
            "Jan 4, 2027 at 10:00 AM"
        );
        assert_eq!(
            format_date(ts, "{date_long}", &berlin).unwrap(),
            "Monday, January 4th, 2027"
        );
        assert_eq!(
            format_date(ts, "{date_num}", &berlin).unwrap(),
            "2027-01-04"
        );
        assert_eq!(format_date(ts, "{date_pretty}", &berlin).unwrap(), "Today");
        assert_eq!(
            format_date(ts + 86_400, "{date_short_pretty}", &berlin).unwrap(),
            "Tomorrow"
        );
        assert_eq!(
            format_date(ts - 3 * 3600, "{ago}", &berlin).unwrap(),
            "3 hours ago"
        );
        let mut new_york = viewer();
        new_york.tz = chrono_tz::America::New_York;
        assert_eq!(format_date(ts, "{time}", &new_york).unwrap(), "4:00 AM");
        assert_eq!(
            md(&format!("due <!date^{ts}^{{date_short}}|4 Jan>")),
            "due <time>Jan 4, 2027</time>"
        );
        assert_eq!(md("<!date^oops^{date}|fallback text>"), "fallback text");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(23), "23rd");
    }
}
