//! users.info, users.list (cursor paging), usergroups.users.list and conversations.open.

use serde_json::{json, Value};

use super::{fields, ApiError, Call, Reply};
use crate::directory::dm_channel_id;

/// Slack caps `limit` at 1000 for users.list.
const MAX_PAGE: usize = 1000;
/// Slack refuses group DMs with more than 8 people.
const MAX_MPIM_USERS: usize = 8;

pub(super) fn info(c: &mut Call<'_>) -> Reply {
    let id = c.p.str("user").ok_or("user_not_found")?;
    let user = c.w.directory.user(&id).ok_or("user_not_found")?;
    let team_id = c.install().team_id;
    Ok(fields([(
        "user",
        c.w.directory.user_json(user, &team_id, c.now),
    )]))
}

/// users.lookupByEmail: the member whose profile email matches (case-insensitively), or
/// `users_not_found` (Slack's plural).
pub(super) fn lookup_by_email(c: &mut Call<'_>) -> Reply {
    let email = c.p.str("email").ok_or("users_not_found")?;
    let user =
        c.w.directory
            .users
            .values()
            .find(|u| !u.email.is_empty() && u.email.eq_ignore_ascii_case(email.trim()))
            .ok_or("users_not_found")?;
    let team_id = c.install().team_id;
    Ok(fields([(
        "user",
        c.w.directory.user_json(user, &team_id, c.now),
    )]))
}

/// Opaque cursors: hex of `user:<next id>`, so paging survives users being added.
fn encode_cursor(next_user_id: &str) -> String {
    hex::encode(format!("user:{next_user_id}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = hex::decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("user:")
        .map(str::to_string)
}

pub(super) fn list(c: &mut Call<'_>) -> Reply {
    let limit = match c.p.u64("limit") {
        None | Some(0) => MAX_PAGE,
        Some(n) => (n as usize).min(MAX_PAGE),
    };
    let start = match c.p.str("cursor") {
        None => None,
        Some(cursor) => Some(decode_cursor(&cursor).ok_or("invalid_cursor")?),
    };
    let team_id = c.install().team_id;
    let dir = &c.w.directory;
    let mut users = dir.users.range(start.unwrap_or_default()..).map(|(_, u)| u);
    let members: Vec<Value> = users
        .by_ref()
        .take(limit)
        .map(|u| dir.user_json(u, &team_id, c.now))
        .collect();
    let next_cursor = users
        .next()
        .map(|u| encode_cursor(&u.id))
        .unwrap_or_default();
    Ok(fields([
        ("members", Value::Array(members)),
        ("cache_ts", json!(c.now.timestamp())),
        ("response_metadata", json!({ "next_cursor": next_cursor })),
    ]))
}

pub(super) fn usergroup_members(c: &mut Call<'_>) -> Reply {
    let group = c.p.str("usergroup").ok_or("no_such_subteam")?;
    let members =
        c.w.directory
            .usergroups
            .get(&group)
            .ok_or("no_such_subteam")?;
    Ok(fields([("users", json!(members))]))
}

pub(super) fn conversations_open(c: &mut Call<'_>) -> Reply {
    if let Some(channel) = c.p.str("channel") {
        // Re-opening by id: only DMs the emulator knows.
        if c.w.directory.dm_user(&channel).is_none() {
            return Err(ApiError::new("channel_not_found"));
        }
        return Ok(fields([
            ("no_op", json!(true)),
            ("already_open", json!(true)),
            ("channel", json!({ "id": channel })),
        ]));
    }
    let users = c.p.str("users").ok_or("users_list_not_supplied")?;
    let bot = c.install().bot_user_id;
    let mut ids: Vec<String> = users
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty() && *u != bot)
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Err(ApiError::new("not_enough_users"));
    }
    if ids.len() > MAX_MPIM_USERS {
        return Err(ApiError::new("too_many_users"));
    }
    for id in &ids {
        c.w.directory.dm_target(id)?;
    }
    let id = match ids.as_slice() {
        [one] => dm_channel_id(one),
        many => mpim_id(many),
    };
    let already_open = !c.w.directory.open_dms.insert(id.clone());
    let mut reply = fields([("channel", json!({ "id": id }))]);
    if already_open {
        reply.insert("no_op".into(), json!(true));
        reply.insert("already_open".into(), json!(true));
    }
    Ok(reply)
}

/// A group DM id that is the same for the same set of people (FNV-1a of the sorted ids).
fn mpim_id(users: &[String]) -> String {
    let hash = users
        .join(",")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("G{:010X}", hash & 0xFF_FFFF_FFFF)
}
