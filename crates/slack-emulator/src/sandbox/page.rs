//! The page: one column per member showing their DM with the bot as their Slack client
//! would (author, time in their zone, day dividers, threads, "edited", ephemerals), their
//! open modal, and a composer. A script polls a version counter and swaps in what changed.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::blocks::{message_blocks, modal, MessageRef, ModalState};
use super::mrkdwn::{esc, mrkdwn, Viewer};
use crate::blocks::ViewKind;
use crate::directory::dm_channel_id;
use crate::model::{EmulatedMessage, EmulatedUser};
use crate::state::World;

/// The user id Slack's own notices come from.
pub(crate) const SLACKBOT: &str = "USLACKBOT";

/// A modal shown with what a member entered and the bot's errors instead of its initial state.
pub(crate) struct Pending<'a> {
    pub view_id: &'a str,
    pub state: &'a ModalState,
}

/// A number that changes whenever anything the page shows changes.
pub(crate) fn version(w: &World) -> u64 {
    let mut h = DefaultHasher::new();
    for m in &w.messages {
        (
            &m.channel,
            &m.ts,
            m.edits,
            &m.text,
            &m.ephemeral_for,
            &m.thread_ts,
        )
            .hash(&mut h);
        m.blocks.to_string().hash(&mut h);
    }
    for v in &w.views {
        (&v.id, &v.hash, &v.user).hash(&mut h);
    }
    for u in w.directory.users.values() {
        (&u.id, &u.real_name, &u.tz, u.deleted).hash(&mut h);
    }
    w.sandbox_bot.is_some().hash(&mut h);
    h.finish()
}

fn zone(user: &EmulatedUser) -> Tz {
    user.tz.parse().unwrap_or(Tz::UTC)
}

pub(crate) fn viewer_for(w: &World, user: &EmulatedUser) -> Viewer {
    Viewer {
        tz: zone(user),
        now: w.now(),
        users: w
            .directory
            .users
            .values()
            .map(|u| (u.id.clone(), u.real_name.clone()))
            .collect(),
        channels: w
            .directory
            .channels
            .iter()
            .map(|(id, c)| (id.clone(), c.name.clone()))
            .collect(),
    }
}

fn ts_instant(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs = secs.parse::<i64>().ok()?;
    let micros = micros.parse::<u32>().unwrap_or(0);
    Utc.timestamp_opt(secs, micros.saturating_mul(1000))
        .single()
}

/// The members the page shows: people, not bots, not deactivated.
pub(crate) fn members(w: &World) -> Vec<&EmulatedUser> {
    w.directory
        .users
        .values()
        .filter(|u| !u.is_bot && !u.deleted)
        .collect()
}

pub(crate) fn page(w: &World, pending: Option<Pending<'_>>) -> String {
    let mut out = String::from(HEAD);
    out.push_str(&format!(
        "<body data-version=\"{}\"><header class=top><div><b>{}</b> <span class=ctx>sandbox workspace · nothing here reaches a real Slack</span></div>\
         <form method=post action=/_control/reset data-js data-confirm=\"Reset the sandbox: every message, modal and the bot's database?\"><button class=danger>Reset sandbox</button></form></header>\
         <p class=intro>Each member's DM with the bot, as their Slack shows it (times in their zone). Buttons, menus and \
         modals send signed requests to the bot, as Slack does; the page follows along by itself. Type <code>/pulse help</code> \
         or a message in a member's box to talk to the bot as them.</p><div id=notice role=status></div>",
        version(w),
        esc(&w.config.team_name)
    ));
    if w.sandbox_bot.is_none() {
        out.push_str(
            "<p class=warn>No bot is connected: clicks and messages have nowhere to go.</p>",
        );
    }
    out.push_str("<main id=members>");
    for user in members(w) {
        out.push_str(&member(w, user, pending.as_ref()));
    }
    out.push_str("</main>");
    out.push_str(SCRIPT);
    out.push_str("</body></html>");
    out
}

/// One member's column.
fn member(w: &World, user: &EmulatedUser, pending: Option<&Pending<'_>>) -> String {
    let viewer = viewer_for(w, user);
    let local_now = viewer.now.with_timezone(&viewer.tz);
    let mut out = format!(
        "<section class=member data-member=\"{}\"><div class=member-head><span class=avatar>{}</span><div><b>{}</b> \
         <span class=ctx>{} · {} · {} local</span></div></div>",
        esc(&user.id),
        esc(&initial(&user.real_name)),
        esc(&user.real_name),
        esc(&user.id),
        esc(&user.tz),
        local_now.format("%a %H:%M")
    );
    out.push_str(&messages(w, user, &viewer));
    out.push_str(&modal_slot(w, &user.id, pending));
    out.push_str(&format!(
        "<form class=composer method=post action=/sandbox/compose data-js><input type=hidden name=user value=\"{}\">\
         <input name=text autocomplete=off placeholder=\"Message Pulseloop as {}, or /pulse help\" aria-label=\"message as {}\">\
         <button class=primary>Send</button></form></section>",
        esc(&user.id),
        esc(&user.real_name),
        esc(&user.real_name)
    ));
    out
}

fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default()
}

/// The member's open modal (the newest), in a slot the script replaces as a whole.
pub(crate) fn modal_slot(w: &World, user_id: &str, pending: Option<&Pending<'_>>) -> String {
    let view = w
        .views
        .iter()
        .rev()
        .find(|v| v.kind == ViewKind::Modal && v.user.as_deref() == Some(user_id));
    let Some(view) = view else {
        return "<div class=modal-slot data-view=\"\"></div>".to_string();
    };
    let Some(user) = w.directory.user(user_id) else {
        return "<div class=modal-slot data-view=\"\"></div>".to_string();
    };
    let viewer = viewer_for(w, user);
    let state = pending.filter(|p| p.view_id == view.id).map(|p| p.state);
    format!(
        "<div class=modal-slot data-view=\"{}:{}\"><div class=modal-backdrop>{}</div></div>",
        esc(&view.id),
        esc(&view.hash),
        modal(&view.id, user_id, &view.view, state, &viewer)
    )
}

/// The DM's messages in order, with day dividers and each thread under its parent.
fn messages(w: &World, user: &EmulatedUser, viewer: &Viewer) -> String {
    let channel = dm_channel_id(&user.id);
    let visible: Vec<&EmulatedMessage> = w
        .messages
        .iter()
        .filter(|m| m.channel == channel)
        .filter(|m| m.ephemeral_for.as_deref().is_none_or(|u| u == user.id))
        .collect();
    let is_reply = |m: &EmulatedMessage| {
        m.thread_ts
            .as_deref()
            .is_some_and(|t| t != m.ts && visible.iter().any(|p| p.ts == t))
    };
    let mut replies: HashMap<&str, Vec<&EmulatedMessage>> = HashMap::new();
    for m in visible.iter().filter(|m| is_reply(m)) {
        if let Some(parent) = m.thread_ts.as_deref() {
            replies.entry(parent).or_default().push(m);
        }
    }
    let mut out = String::from("<div class=msgs>");
    if visible.is_empty() {
        out.push_str("<p class=empty>No messages yet.</p>");
    }
    let mut last_day = None;
    for m in visible.iter().filter(|m| !is_reply(m)) {
        let local = ts_instant(&m.ts).map(|t| t.with_timezone(&viewer.tz));
        if let Some(local) = local {
            let day = local.date_naive();
            if last_day != Some(day) {
                out.push_str(&format!(
                    "<div class=day><span>{}</span></div>",
                    local.format("%A, %B %-d")
                ));
                last_day = Some(day);
            }
        }
        out.push_str(&message(
            w,
            user,
            m,
            viewer,
            replies.get(m.ts.as_str()),
            None,
        ));
    }
    out.push_str("</div>");
    out
}

fn message(
    w: &World,
    user: &EmulatedUser,
    m: &EmulatedMessage,
    viewer: &Viewer,
    replies: Option<&Vec<&EmulatedMessage>>,
    parent_day: Option<chrono::NaiveDate>,
) -> String {
    let (author, badge) = if m.user == SLACKBOT {
        ("Slackbot".to_string(), "")
    } else if let Some(u) = w.directory.user(&m.user) {
        let badge = if u.is_bot {
            " <span class=app>APP</span>"
        } else {
            ""
        };
        (u.real_name.clone(), badge)
    } else {
        (m.user.clone(), "")
    };
    let time = ts_instant(&m.ts)
        .map(|t| {
            let local = t.with_timezone(&viewer.tz);
            // A reply on another day than its parent says which day, as Slack's threads do.
            let shown = match parent_day {
                Some(day) if day != local.date_naive() => local.format("%a, %b %-d at %-I:%M %p"),
                _ => local.format("%-I:%M %p"),
            };
            format!(
                "<time datetime=\"{}\" title=\"{}\">{shown}</time>",
                t.to_rfc3339(),
                local.format("%A, %B %-d, %Y at %H:%M:%S %Z"),
            )
        })
        .unwrap_or_default();
    let class = if m.ephemeral_for.is_some() {
        "msg ephemeral"
    } else {
        "msg"
    };
    let body = if m.blocks.as_array().is_some_and(|b| !b.is_empty()) {
        let at = MessageRef {
            user: &user.id,
            channel: &m.channel,
            ts: &m.ts,
        };
        message_blocks(&m.blocks, &at, viewer)
    } else {
        format!("<div class=text>{}</div>", mrkdwn(&m.text, viewer))
    };
    let edited = if m.edits > 0 {
        "<span class=edited>(edited)</span>"
    } else {
        ""
    };
    let mut out = format!(
        "<div class=\"{class}\" data-ts=\"{}\"><span class=avatar>{}</span><div class=msg-main>\
         <div class=msg-head><b class=author>{}</b>{badge} {time}</div><div class=msg-body>{body}{edited}</div>",
        esc(&m.ts),
        esc(&initial(&author)),
        esc(&author)
    );
    if m.ephemeral_for.is_some() {
        out.push_str("<div class=only-you>👁 Only visible to you</div>");
    }
    if let Some(replies) = replies.filter(|r| !r.is_empty()) {
        let n = replies.len();
        out.push_str(&format!(
            "<div class=thread><div class=thread-count>{n} {}</div>",
            if n == 1 { "reply" } else { "replies" }
        ));
        let day = ts_instant(&m.ts).map(|t| t.with_timezone(&viewer.tz).date_naive());
        for r in replies {
            out.push_str(&message(w, user, r, viewer, None, day));
        }
        out.push_str("</div>");
    }
    out.push_str("</div></div>");
    out
}

const HEAD: &str = r#"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content="width=device-width">
<title>pulseloop sandbox</title><style>
body{font:15px/1.46668 "Slack-Lato",Lato,"Helvetica Neue",Helvetica,"Segoe UI",system-ui,sans-serif;color:#1d1c1d;background:#f8f8f8;margin:0}
header.top{display:flex;justify-content:space-between;align-items:center;background:#3f0e40;color:#fff;padding:8px 20px}
header.top .ctx{color:#d1c4d2}.intro,.warn,#notice{max-width:760px;margin:10px auto;padding:0 16px;color:#616061;font-size:14px}
.warn,#notice:not(:empty){color:#8f1d1d}
main{max-width:760px;margin:0 auto;padding:0 16px 40px}
.member{background:#fff;border:1px solid #ddd;border-radius:8px;margin:16px 0;overflow:hidden}
.member-head{display:flex;gap:10px;align-items:center;padding:10px 16px;border-bottom:1px solid #eee}
.avatar{flex:none;width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;display:inline-flex;align-items:center;justify-content:center;font-weight:700}
.member-head .avatar{background:#1264a3}
.msgs{padding:4px 0}.empty{color:#616061;padding:0 16px}
.day{text-align:center;border-top:1px solid #eee;margin:14px 0 4px;height:0}
.day span{position:relative;top:-12px;background:#fff;border:1px solid #ddd;border-radius:12px;padding:2px 12px;font-size:13px;font-weight:700}
.msg{display:flex;gap:8px;padding:6px 16px}.msg:hover{background:#f8f8f8}
.msg-main{flex:1;min-width:0}.msg-head time{color:#616061;font-size:12px;margin-left:4px}
.app{background:#e8e8e8;color:#616061;font-size:10px;font-weight:700;padding:1px 3px;border-radius:2px;margin-left:4px}
.edited{color:#616061;font-size:12px;margin-left:4px}
.msg.ephemeral{background:#f4f8fb}.only-you{color:#616061;font-size:12px}
.thread{border-left:2px solid #ddd;margin:6px 0 0;padding-left:4px}.thread .msg{padding:4px 8px}
.thread-count{color:#1264a3;font-weight:700;font-size:13px;padding-left:8px}
.section{display:flex;gap:12px;margin:4px 0}.section-body{flex:1}.fields{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px}
.header{font-size:18px;font-weight:900;margin:6px 0}
.ctx{color:#616061;font-size:13px}.msg-body .ctx{margin:4px 0}
hr{border:0;border-top:1px solid #ddd;margin:10px 0}
blockquote{border-left:4px solid #ddd;margin:0;padding-left:10px}
code{color:#e01e5a;background:#f6f6f6;border:1px solid #ddd;border-radius:3px;padding:0 3px;font-size:12px}
pre{background:#f8f8f8;border:1px solid #ddd;border-radius:4px;padding:8px;white-space:pre-wrap;font-size:12px}
.mention{color:#1264a3;background:#e8f5fa;border-radius:3px;padding:0 2px}
a{color:#1264a3}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}form.click{display:inline}
button,.button{font:inherit;font-size:14px;font-weight:700;background:#fff;color:#1d1c1d;border:1px solid #bbb;border-radius:4px;padding:3px 12px;min-height:32px;cursor:pointer;text-decoration:none}
button:hover{background:#f8f8f8}button.primary{background:#007a5a;border-color:#007a5a;color:#fff}
button.danger{background:#fff;color:#e01e5a;border-color:#e01e5a}header button.danger{background:transparent;color:#fff;border-color:#fff}
select{font:inherit;font-size:14px;padding:4px;border:1px solid #bbb;border-radius:4px;min-height:32px;background:#fff}
.modal-backdrop{background:rgba(0,0,0,.08);padding:12px 16px}
form.modal{background:#fff;border-radius:8px;box-shadow:0 4px 12px rgba(0,0,0,.2);max-width:520px;margin:0 auto}
.modal-title{font-size:20px;font-weight:900;padding:16px 24px;border-bottom:1px solid #ddd}
.modal-body{padding:8px 24px 16px}.modal-footer{display:flex;justify-content:flex-end;gap:8px;padding:14px 24px;border-top:1px solid #ddd}
.input{margin:14px 0}.label{display:block;font-weight:700;margin-bottom:6px}.optional{color:#616061;font-weight:400}
.input textarea,.input input[type=text],.input select{box-sizing:border-box;width:100%;font:inherit;border:1px solid #bbb;border-radius:4px;padding:6px 8px}
.option{display:flex;gap:8px;align-items:flex-start;margin:4px 0}.option input{margin-top:4px}.description{color:#616061;font-size:13px}
.hint{color:#616061;font-size:13px;margin-top:4px}
.has-error textarea,.has-error input[type=text],.has-error select{border-color:#e01e5a;box-shadow:0 0 0 1px #e01e5a}
.field-error{color:#e01e5a;font-size:13px;margin-top:4px}
.composer{display:flex;gap:8px;padding:10px 16px;border-top:1px solid #eee}
.composer input{flex:1;font:inherit;border:1px solid #bbb;border-radius:6px;padding:6px 10px}
.emoji{font-family:"Apple Color Emoji","Segoe UI Emoji","Noto Color Emoji",sans-serif}
</style>"#;

const SCRIPT: &str = r#"<script>
(() => {
  let version = document.body.dataset.version;
  const notice = (text) => { document.getElementById('notice').textContent = text || ''; };
  async function refresh() {
    const r = await fetch('/', {cache: 'no-store'});
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    version = doc.body.dataset.version;
    document.body.dataset.version = version;
    const list = document.getElementById('members');
    const fresh = doc.getElementById('members');
    for (const m of fresh.querySelectorAll(':scope > [data-member]')) {
      const old = list.querySelector(`:scope > [data-member="${m.dataset.member}"]`);
      if (!old) { list.appendChild(document.importNode(m, true)); continue; }
      old.querySelector('.msgs').replaceWith(document.importNode(m.querySelector('.msgs'), true));
      const os = old.querySelector('.modal-slot'), ns = m.querySelector('.modal-slot');
      if (os.dataset.view !== ns.dataset.view) os.replaceWith(document.importNode(ns, true));
    }
    for (const old of list.querySelectorAll(':scope > [data-member]')) {
      if (!fresh.querySelector(`:scope > [data-member="${old.dataset.member}"]`)) old.remove();
    }
  }
  async function poll() {
    try {
      const r = await fetch('/sandbox/version', {cache: 'no-store'});
      const v = await r.text();
      if (r.ok && v !== version) await refresh();
    } catch (e) {}
    setTimeout(poll, 700);
  }
  document.addEventListener('submit', async (e) => {
    const form = e.target;
    if (!form.matches('form[data-js]')) return;
    e.preventDefault();
    if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
    const submitter = e.submitter;
    const action = (submitter && submitter.getAttribute('formaction')) || form.getAttribute('action');
    const body = new URLSearchParams(new FormData(form, submitter));
    let r;
    try {
      r = await fetch(action, {method: 'POST', body, headers: {'x-sandbox': 'fetch'}});
    } catch (err) { notice('The sandbox did not answer: ' + err); return; }
    const text = await r.text();
    notice(r.ok ? '' : `${action}: ${r.status} ${text}`);
    if (form.classList.contains('modal') && r.ok) {
      const slot = form.closest('.modal-slot');
      const holder = document.createElement('div');
      holder.innerHTML = text;
      if (slot && holder.firstElementChild) slot.replaceWith(holder.firstElementChild);
    }
    if (form.classList.contains('composer') && r.ok) form.reset();
    await refresh();
  });
  document.addEventListener('change', (e) => {
    if (e.target.matches('select[data-autosubmit]')) e.target.form.requestSubmit();
  });
  poll();
})();
</script>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EmulatorConfig;
    use serde_json::Value;

    fn world() -> World {
        let mut w = World::new(EmulatorConfig::default(), "127.0.0.1:1".parse().unwrap());
        let ada = EmulatedUser::new("U0ADA", "America/New_York").named("Ada Lovelace");
        w.directory.users.insert(ada.id.clone(), ada);
        w
    }

    fn msg(ts: &str, thread_ts: Option<&str>, text: &str) -> EmulatedMessage {
        EmulatedMessage {
            channel: dm_channel_id("U0ADA"),
            ts: ts.into(),
            thread_ts: thread_ts.map(str::to_string),
            user: "U0PULSEBOT".into(),
            text: text.into(),
            blocks: Value::Null,
            edits: 0,
            ephemeral_for: None,
            files: Vec::new(),
            metadata: None,
        }
    }

    #[test]
    fn replies_sit_under_their_parent_with_times_in_the_members_zone() {
        let mut w = world();
        // 2027-01-04 15:00 UTC = 10:00 in New York; the reply a day later.
        w.messages.push(msg("1799074800.000100", None, "*Pulse* A"));
        w.messages.push(msg("1799074900.000100", None, "Pulse B"));
        w.messages.push(msg(
            "1799161200.000100",
            Some("1799074800.000100"),
            "reminder for A",
        ));
        let html = page(&w, None);
        let a = html.find("<b>Pulse</b> A").unwrap();
        let reply = html.find("reminder for A").unwrap();
        let b = html.find("Pulse B").unwrap();
        assert!(
            a < reply && reply < b,
            "the reply is drawn under A, before B"
        );
        assert!(html.contains("1 reply"));
        assert!(html.contains(">10:00 AM</time>"), "New York time");
        assert!(
            html.contains(">Tue, Jan 5 at 10:00 AM</time>"),
            "a reply on another day"
        );
        assert!(html.contains("Monday, January 4"), "a day divider");
    }

    #[test]
    fn edits_ephemerals_and_the_version() {
        let mut w = world();
        w.messages.push(msg("1799074800.000100", None, "hello"));
        let before = version(&w);
        w.messages[0].edits = 2;
        let mut eph = msg("1799074801.000100", None, "only you");
        eph.ephemeral_for = Some("U0ADA".into());
        w.messages.push(eph);
        let mut other = msg("1799074802.000100", None, "someone else's");
        other.ephemeral_for = Some("U0OTHER".into());
        w.messages.push(other);
        assert_ne!(version(&w), before, "the page's version follows changes");
        let html = page(&w, None);
        assert!(html.contains("<span class=edited>(edited)</span>"));
        assert!(!html.contains("times)"));
        assert!(html.contains("Only visible to you"));
        assert!(
            !html.contains("someone else"),
            "another member's ephemeral is not shown"
        );
    }
}
