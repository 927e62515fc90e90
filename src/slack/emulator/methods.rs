//! The Web API methods the emulator implements, answering in Slack's shapes.

use chrono::{Offset, TimeZone, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration;

use super::blocks::{validate_blocks, validate_view};
use super::{dm_channel_id, EmulatedFile, EmulatedMessage, EmulatedUser, EmulatedView, World};

pub struct ApiError {
    pub code: String,
    pub messages: Vec<String>,
}

fn err(code: &str) -> ApiError {
    ApiError {
        code: code.into(),
        messages: Vec::new(),
    }
}

fn err_with(code: &str, messages: Vec<String>) -> ApiError {
    ApiError {
        code: code.into(),
        messages,
    }
}

type Params = Map<String, Value>;
type Answer = Result<Value, ApiError>;

const METHODS: &[&str] = &[
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.update",
    "views.publish",
    "users.info",
    "users.list",
    "usergroups.users.list",
    "conversations.open",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "oauth.v2.access",
];

pub fn is_known(method: &str) -> bool {
    METHODS.contains(&method)
}

fn str_param<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub fn call(w: &mut World, method: &str, p: &Params, token: Option<&str>) -> Answer {
    match method {
        "auth.test" => auth_test(w, token),
        "chat.postMessage" => post_message(w, p),
        "chat.update" => update(w, p),
        "chat.postEphemeral" => post_ephemeral(w, p),
        "views.open" => views_open(w, p),
        "views.update" => views_update(w, p),
        "views.publish" => views_publish(w, p),
        "users.info" => users_info(w, p),
        "users.list" => users_list(w, p),
        "usergroups.users.list" => usergroup_users(w, p),
        "conversations.open" => conversations_open(w, p),
        "files.getUploadURLExternal" => upload_url(w, p),
        "files.completeUploadExternal" => complete_upload(w, p),
        "oauth.v2.access" => oauth_access(w, p),
        _ => Err(err("unknown_method")),
    }
}

fn auth_test(w: &World, token: Option<&str>) -> Answer {
    let team = token
        .and_then(|t| w.tokens.get(t))
        .cloned()
        .unwrap_or_default();
    Ok(json!({
        "url": format!("https://{}.slack.com/", w.config.team_name.to_lowercase()),
        "team": w.config.team_name, "user": "pulse", "team_id": team,
        "user_id": w.config.bot_user_id, "bot_id": w.config.bot_id, "is_enterprise_install": false,
    }))
}

/// Resolves where a post lands: a user id means that user's DM with the bot.
fn resolve_channel(w: &World, channel: &str) -> Result<String, ApiError> {
    if channel.starts_with('U') || channel.starts_with('W') {
        let user = w.users.get(channel).ok_or_else(|| err("user_not_found"))?;
        if user.deleted {
            return Err(err("account_inactive"));
        }
        if user.is_bot {
            return Err(err("cannot_dm_bot"));
        }
        return Ok(dm_channel_id(channel));
    }
    if let Some(user_part) = channel.strip_prefix('D') {
        let user = w
            .users
            .values()
            .find(|u| u.id.trim_start_matches(['U', 'W']) == user_part)
            .ok_or_else(|| err("channel_not_found"))?;
        if user.deleted {
            return Err(err("account_inactive"));
        }
        return Ok(channel.to_string());
    }
    match w.channels.get(channel) {
        Some(c) if c.bot_is_member => Ok(channel.to_string()),
        Some(_) => Err(err("not_in_channel")),
        None => Err(err("channel_not_found")),
    }
}

fn check_blocks(p: &Params) -> Result<Value, ApiError> {
    match p.get("blocks") {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::String(s)) => Err(err_with(
            "invalid_blocks_format",
            vec![format!(
                "blocks is not valid JSON: {}",
                s.chars().take(40).collect::<String>()
            )],
        )),
        Some(blocks) => {
            let errors = validate_blocks(blocks, 50, "/blocks");
            if errors.is_empty() {
                Ok(blocks.clone())
            } else {
                Err(err_with("invalid_blocks", errors))
            }
        }
    }
}

fn post_message(w: &mut World, p: &Params) -> Answer {
    let channel = str_param(p, "channel").ok_or_else(|| err("channel_not_found"))?;
    let channel = resolve_channel(w, channel)?;
    let blocks = check_blocks(p)?;
    let text = str_param(p, "text").unwrap_or("").to_string();
    if text.is_empty() && blocks.as_array().is_none_or(|b| b.is_empty()) {
        return Err(err("no_text"));
    }
    if text.chars().count() > 40_000 {
        return Err(err("msg_too_long"));
    }
    let thread_ts = str_param(p, "thread_ts").map(str::to_string);
    if let Some(parent) = &thread_ts {
        if !w
            .messages
            .iter()
            .any(|m| &m.ts == parent && m.channel == channel)
        {
            return Err(err("thread_not_found"));
        }
    }
    let ts = w.next_ts();
    w.messages.push(EmulatedMessage {
        channel: channel.clone(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        text: text.clone(),
        blocks: blocks.clone(),
        edits: 0,
        ephemeral_for: None,
    });
    let mut message = json!({ "type": "message", "user": w.config.bot_user_id, "bot_id": w.config.bot_id, "text": text, "ts": ts });
    if !blocks.is_null() {
        message["blocks"] = blocks;
    }
    if let Some(t) = thread_ts {
        message["thread_ts"] = json!(t);
    }
    Ok(json!({ "channel": channel, "ts": ts, "message": message }))
}

fn update(w: &mut World, p: &Params) -> Answer {
    let channel = str_param(p, "channel")
        .ok_or_else(|| err("channel_not_found"))?
        .to_string();
    let ts = str_param(p, "ts")
        .ok_or_else(|| err("message_not_found"))?
        .to_string();
    let blocks = check_blocks(p)?;
    let text = str_param(p, "text").map(str::to_string);
    let msg = w
        .messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts && m.ephemeral_for.is_none())
        .ok_or_else(|| err("message_not_found"))?;
    if let Some(t) = &text {
        msg.text = t.clone();
    }
    if !blocks.is_null() {
        msg.blocks = blocks;
    }
    msg.edits += 1;
    let (text, blocks) = (msg.text.clone(), msg.blocks.clone());
    Ok(
        json!({ "channel": channel, "ts": ts, "text": text, "message": { "text": text, "blocks": blocks } }),
    )
}

fn post_ephemeral(w: &mut World, p: &Params) -> Answer {
    let channel = str_param(p, "channel").ok_or_else(|| err("channel_not_found"))?;
    let user = str_param(p, "user")
        .ok_or_else(|| err("user_not_found"))?
        .to_string();
    if !w.users.contains_key(&user) {
        return Err(err("user_not_found"));
    }
    let channel = resolve_channel(w, channel)?;
    if channel.starts_with('D') && channel != dm_channel_id(&user) {
        return Err(err("user_not_in_channel"));
    }
    let blocks = check_blocks(p)?;
    let ts = w.next_ts();
    w.messages.push(EmulatedMessage {
        channel,
        ts: ts.clone(),
        thread_ts: None,
        text: str_param(p, "text").unwrap_or("").to_string(),
        blocks,
        edits: 0,
        ephemeral_for: Some(user),
    });
    Ok(json!({ "message_ts": ts }))
}

fn view_object(w: &World, v: &EmulatedView) -> Value {
    let mut view = v.view.clone();
    if let Some(obj) = view.as_object_mut() {
        obj.insert("id".into(), json!(v.id));
        obj.insert("team_id".into(), json!(w.config.team_id));
        obj.insert("hash".into(), json!(v.hash));
        obj.insert("root_view_id".into(), json!(v.id));
        obj.insert("app_id".into(), json!(w.config.app_id));
        obj.insert("bot_id".into(), json!(w.config.bot_id));
        obj.entry("private_metadata").or_insert(json!(""));
        obj.entry("callback_id").or_insert(json!(""));
        obj.insert("state".into(), json!({ "values": {} }));
    }
    json!({ "view": view })
}

fn parse_view(p: &Params, publish: bool) -> Result<Value, ApiError> {
    let view = match p.get("view") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => {
            return Err(err_with(
                "invalid_arguments",
                vec!["[ERROR] missing required field: view".into()],
            ))
        }
    };
    let errors = validate_view(&view, publish);
    if errors.is_empty() {
        Ok(view)
    } else {
        Err(err_with("invalid_arguments", errors))
    }
}

fn new_hash(w: &mut World) -> String {
    format!("{}.{}", Utc::now().timestamp(), w.next_id(""))
}

fn views_open(w: &mut World, p: &Params) -> Answer {
    let trigger = str_param(p, "trigger_id").unwrap_or("");
    match w.triggers.get_mut(trigger) {
        None => {
            return Err(err_with(
                "invalid_arguments",
                vec!["invalid `trigger_id`".into()],
            ))
        }
        Some((_, true)) => return Err(err("exchanged_trigger_id")),
        Some((at, _)) if at.elapsed() > Duration::from_secs(3) => {
            return Err(err("expired_trigger_id"))
        }
        Some(entry) => entry.1 = true,
    }
    let view = parse_view(p, false)?;
    let id = w.next_id("V");
    let hash = new_hash(w);
    let v = EmulatedView {
        id,
        user: None,
        kind: "modal".into(),
        external_id: view
            .get("external_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        view,
        hash,
    };
    let answer = view_object(w, &v);
    w.views.push(v);
    Ok(answer)
}

fn views_update(w: &mut World, p: &Params) -> Answer {
    let view = parse_view(p, false)?;
    let id = str_param(p, "view_id").map(str::to_string);
    let external = str_param(p, "external_id").map(str::to_string);
    let hash = str_param(p, "hash").map(str::to_string);
    let new = new_hash(w);
    let index = w
        .views
        .iter()
        .position(|v| {
            id.as_deref() == Some(v.id.as_str())
                || (external.is_some() && v.external_id == external)
        })
        .ok_or_else(|| err("not_found"))?;
    if hash.is_some_and(|h| h != w.views[index].hash) {
        return Err(err("hash_conflict"));
    }
    w.views[index].view = view;
    w.views[index].hash = new;
    let v = w.views[index].clone();
    Ok(view_object(w, &v))
}

fn views_publish(w: &mut World, p: &Params) -> Answer {
    let user = str_param(p, "user_id")
        .ok_or_else(|| err("invalid_arguments"))?
        .to_string();
    if !w.users.contains_key(&user) {
        return Err(err("user_not_found"));
    }
    let view = parse_view(p, true)?;
    let hash = new_hash(w);
    let index = w
        .views
        .iter()
        .position(|v| v.kind == "home" && v.user.as_deref() == Some(&user));
    if let (Some(i), Some(given)) = (index, str_param(p, "hash")) {
        if w.views[i].hash != given {
            return Err(err("hash_conflict"));
        }
    }
    let v = match index {
        Some(i) => {
            w.views[i].view = view;
            w.views[i].hash = hash;
            w.views[i].clone()
        }
        None => {
            let v = EmulatedView {
                id: w.next_id("V"),
                user: Some(user),
                kind: "home".into(),
                view,
                hash,
                external_id: None,
            };
            w.views.push(v.clone());
            v
        }
    };
    Ok(view_object(w, &v))
}

/// Offset of an IANA zone right now, in seconds, and its abbreviation.
fn zone_offset(tz: &str) -> (i64, String) {
    match tz.parse::<chrono_tz::Tz>() {
        Ok(zone) => {
            let now = zone.from_utc_datetime(&Utc::now().naive_utc());
            (
                i64::from(now.offset().fix().local_minus_utc()),
                now.format("%Z").to_string(),
            )
        }
        Err(_) => (0, "UTC".into()),
    }
}

fn user_object(w: &World, u: &EmulatedUser) -> Value {
    let (offset, label) = zone_offset(&u.tz);
    json!({
        "id": u.id, "team_id": w.config.team_id, "name": u.name, "deleted": u.deleted,
        "real_name": u.real_name, "tz": u.tz, "tz_label": label, "tz_offset": offset,
        "is_bot": u.is_bot, "is_app_user": false, "is_restricted": u.is_restricted,
        "is_ultra_restricted": false, "is_admin": false, "is_owner": false,
        "profile": { "real_name": u.real_name, "display_name": u.name,
                     "status_text": u.status_text, "status_emoji": u.status_emoji },
    })
}

fn users_info(w: &World, p: &Params) -> Answer {
    let id = str_param(p, "user").ok_or_else(|| err("user_not_found"))?;
    let user = w.users.get(id).ok_or_else(|| err("user_not_found"))?;
    Ok(json!({ "user": user_object(w, user) }))
}

fn users_list(w: &World, p: &Params) -> Answer {
    let limit = p
        .get("limit")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(200)
        .clamp(1, 1000) as usize;
    let start = str_param(p, "cursor")
        .and_then(|c| c.strip_prefix("dXNlcjo"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let all: Vec<&EmulatedUser> = w.users.values().collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|u| user_object(w, u))
        .collect();
    let next = if start + limit < all.len() {
        format!("dXNlcjo{}", start + limit)
    } else {
        String::new()
    };
    Ok(
        json!({ "members": page, "cache_ts": Utc::now().timestamp(), "response_metadata": { "next_cursor": next } }),
    )
}

fn usergroup_users(w: &World, p: &Params) -> Answer {
    let id = str_param(p, "usergroup").ok_or_else(|| err("no_such_subteam"))?;
    let users = w.usergroups.get(id).ok_or_else(|| err("no_such_subteam"))?;
    Ok(json!({ "users": users }))
}

fn conversations_open(w: &World, p: &Params) -> Answer {
    let users = str_param(p, "users").ok_or_else(|| err("users_list_not_supplied"))?;
    let ids: Vec<&str> = users.split(',').map(str::trim).collect();
    if ids.len() != 1 {
        return Err(err("not_implemented"));
    }
    let user = w.users.get(ids[0]).ok_or_else(|| err("user_not_found"))?;
    if user.deleted {
        return Err(err("account_inactive"));
    }
    if user.is_bot {
        return Err(err("cannot_dm_bot"));
    }
    Ok(json!({ "channel": { "id": dm_channel_id(ids[0]) }, "already_open": true, "no_op": true }))
}

fn upload_url(w: &mut World, p: &Params) -> Answer {
    let filename = str_param(p, "filename")
        .ok_or_else(|| err("invalid_arguments"))?
        .to_string();
    let length = p
        .get("length")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or_else(|| err("invalid_arguments"))?;
    if length == 0 {
        return Err(err("invalid_arguments"));
    }
    let id = w.next_id("F");
    w.files.push(EmulatedFile {
        id: id.clone(),
        filename,
        title: None,
        bytes: Vec::new(),
        shared_to: Vec::new(),
    });
    Ok(json!({ "upload_url": format!("http://{}/upload/{id}", w.addr), "file_id": id }))
}

fn complete_upload(w: &mut World, p: &Params) -> Answer {
    let files = p
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| err("invalid_arguments"))?
        .clone();
    let channel = match str_param(p, "channel_id") {
        Some(c) => Some(resolve_channel(w, c)?),
        None => None,
    };
    let mut done = Vec::new();
    for f in files {
        let id = f.get("id").and_then(Value::as_str).unwrap_or("");
        let file = w
            .files
            .iter_mut()
            .find(|x| x.id == id)
            .ok_or_else(|| err("file_not_found"))?;
        if file.bytes.is_empty() {
            return Err(err("file_upload_not_completed"));
        }
        file.title = f.get("title").and_then(Value::as_str).map(str::to_string);
        if let Some(c) = &channel {
            file.shared_to.push(c.clone());
        }
        done.push(json!({ "id": file.id, "title": file.title, "name": file.filename, "size": file.bytes.len() }));
    }
    Ok(json!({ "files": done }))
}

fn oauth_access(w: &mut World, p: &Params) -> Answer {
    let (client_id, secret) = w
        .oauth_client
        .clone()
        .ok_or_else(|| err("invalid_client_id"))?;
    if str_param(p, "client_id") != Some(client_id.as_str()) {
        return Err(err("invalid_client_id"));
    }
    if str_param(p, "client_secret") != Some(secret.as_str()) {
        return Err(err("bad_client_secret"));
    }
    let code = str_param(p, "code").unwrap_or("");
    let (team_id, team_name) = match w.oauth_codes.get_mut(code) {
        Some((team, name, used)) if !*used => {
            *used = true;
            (team.clone(), name.clone())
        }
        _ => return Err(err("invalid_code")),
    };
    let token = format!("xoxb-{}", w.next_id(""));
    w.tokens.insert(token.clone(), team_id.clone());
    Ok(json!({
        "access_token": token, "token_type": "bot",
        "scope": "chat:write,im:write,im:history,users:read,commands,files:write,usergroups:read",
        "bot_user_id": w.config.bot_user_id, "app_id": w.config.app_id,
        "team": { "id": team_id, "name": team_name }, "enterprise": null, "is_enterprise_install": false,
        "authed_user": { "id": "U0INSTALLER", "scope": "", "access_token": null, "token_type": null },
    }))
}
