//! conversations.history and conversations.replies: a conversation's messages, newest first,
//! between `oldest` and `latest`, paged with a cursor; message metadata only with
//! `include_all_metadata`. Ephemeral messages are never listed; thread replies only in
//! conversations.replies.

use serde_json::{json, Value};

use super::{fields, ApiError, Call, Reply};
use crate::methods::chat::{decorate, message_json};
use crate::model::EmulatedMessage;

/// Slack's default page size for both methods, and its maximum.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 999;

/// A message timestamp as a number of microseconds, for ordering and range checks.
fn ts_micros(ts: &str) -> Option<i64> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if secs.is_empty() || !secs.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 6 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    secs.checked_mul(1_000_000)?.checked_add(frac)
}

/// `oldest`/`latest` as given, or the Slack error for an unreadable one.
fn bound(c: &Call<'_>, key: &str, error: &'static str) -> Result<Option<i64>, ApiError> {
    match c.p.str(key) {
        None => Ok(None),
        Some(ts) => ts_micros(&ts).map(Some).ok_or(ApiError::new(error)),
    }
}

/// The conversation id the bot may read: one of its DMs or a channel it is a member of.
fn readable_channel(c: &Call<'_>) -> Result<String, ApiError> {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let channel = c.w.directory.channel_named(&channel).unwrap_or(channel);
    if channel.starts_with('D') {
        c.w.directory.dm_user(&channel).ok_or("channel_not_found")?;
        return Ok(channel);
    }
    match c.w.directory.channels.get(&channel) {
        Some(ch) if ch.bot_is_member => Ok(channel),
        Some(_) => Err(ApiError::new("not_in_channel")),
        None => Err(ApiError::new("channel_not_found")),
    }
}

/// Lists `selected` (already filtered to the conversation) newest first, within the bounds,
/// one page at a time.
fn page(c: &Call<'_>, mut selected: Vec<&EmulatedMessage>) -> Reply {
    let oldest = bound(c, "oldest", "invalid_ts_oldest")?;
    let latest = bound(c, "latest", "invalid_ts_latest")?;
    let inclusive = matches!(c.p.str("inclusive").as_deref(), Some("true" | "1"));
    let limit =
        c.p.u64("limit")
            .map(|l| (l as usize).clamp(1, MAX_LIMIT))
            .unwrap_or(DEFAULT_LIMIT);
    // The cursor is the ts below which the next page starts (opaque to callers, like Slack's).
    let before = match c.p.str("cursor") {
        None => None,
        Some(cursor) => {
            let ts = cursor
                .strip_prefix("next_ts:")
                .and_then(ts_micros)
                .ok_or(ApiError::new("invalid_cursor"))?;
            Some(ts)
        }
    };
    let with_metadata = matches!(
        c.p.str("include_all_metadata").as_deref(),
        Some("true" | "1")
    );
    selected.retain(|m| {
        let Some(ts) = ts_micros(&m.ts) else {
            return false;
        };
        let after_oldest = oldest.is_none_or(|o| if inclusive { ts >= o } else { ts > o });
        let before_latest = latest.is_none_or(|l| if inclusive { ts <= l } else { ts < l });
        let before_cursor = before.is_none_or(|b| ts < b);
        after_oldest && before_latest && before_cursor
    });
    selected.sort_by_key(|m| std::cmp::Reverse(ts_micros(&m.ts).unwrap_or(0)));
    let has_more = selected.len() > limit;
    selected.truncate(limit);
    let install = c.install();
    let app_id = c.w.config.app_id.clone();
    let messages: Vec<Value> = selected
        .iter()
        .map(|m| {
            let mut json = message_json(m, &install, &app_id);
            decorate(&mut json, m, c.w, &install);
            if with_metadata {
                if let Some(metadata) = &m.metadata {
                    json["metadata"] = metadata.clone();
                }
            }
            json
        })
        .collect();
    let next_cursor = match (has_more, selected.last()) {
        (true, Some(last)) => format!("next_ts:{}", last.ts),
        _ => String::new(),
    };
    Ok(fields([
        ("messages", json!(messages)),
        ("has_more", json!(has_more)),
        ("pin_count", json!(0)),
        ("channel_actions_ts", Value::Null),
        ("channel_actions_count", json!(0)),
        ("response_metadata", json!({ "next_cursor": next_cursor })),
    ]))
}

pub(super) fn history(c: &mut Call<'_>) -> Reply {
    let channel = readable_channel(c)?;
    let selected: Vec<&EmulatedMessage> =
        c.w.messages
            .iter()
            .filter(|m| m.channel == channel && m.ephemeral_for.is_none())
            // Thread replies live in their thread only.
            .filter(|m| m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
            .collect();
    page(c, selected)
}

pub(super) fn replies(c: &mut Call<'_>) -> Reply {
    let channel = readable_channel(c)?;
    let ts = c.p.str("ts").ok_or("thread_not_found")?;
    let parent_exists =
        c.w.messages
            .iter()
            .any(|m| m.channel == channel && m.ts == ts && m.ephemeral_for.is_none());
    if !parent_exists {
        return Err(ApiError::new("thread_not_found"));
    }
    let selected: Vec<&EmulatedMessage> =
        c.w.messages
            .iter()
            .filter(|m| m.channel == channel && m.ephemeral_for.is_none())
            .filter(|m| m.ts == ts || m.thread_ts.as_deref() == Some(ts.as_str()))
            .collect();
    page(c, selected)
}

/// conversations.info: a DM's or a channel's conversation object, shaped like Slack's.
pub(super) fn info(c: &mut Call<'_>) -> Reply {
    let channel = c.p.str("channel").ok_or("channel_not_found")?;
    let channel = c.w.directory.channel_named(&channel).unwrap_or(channel);
    let team_id = c.install().team_id;
    let created: i64 = 1_700_000_000;
    let latest_ts = |w: &crate::state::World| {
        w.messages
            .iter()
            .filter(|m| m.channel == channel && m.ephemeral_for.is_none())
            .map(|m| m.ts.clone())
            .next_back()
            .unwrap_or_else(|| "0000000000.000000".into())
    };
    if channel.starts_with('D') {
        let user = c.w.directory.dm_user(&channel).ok_or("channel_not_found")?;
        let conversation = json!({
            "id": channel, "created": created, "is_archived": false, "is_im": true,
            "is_org_shared": false, "context_team_id": team_id, "updated": created * 1000,
            "user": user.id, "last_read": latest_ts(c.w), "is_open": true, "priority": 0,
        });
        return Ok(fields([("channel", conversation)]));
    }
    let ch =
        c.w.directory
            .channels
            .get(&channel)
            .ok_or("channel_not_found")?;
    let mut conversation = json!({
        "id": channel, "name": ch.name, "is_channel": !ch.is_private, "is_group": ch.is_private,
        "is_im": false, "is_mpim": false, "is_private": ch.is_private, "created": created,
        "is_archived": false, "is_general": ch.name == "general", "unlinked": 0,
        "name_normalized": ch.name, "is_shared": false, "is_org_shared": false,
        "is_pending_ext_shared": false, "pending_shared": [], "context_team_id": team_id,
        "updated": created * 1000, "parent_conversation": null, "creator": "",
        "is_ext_shared": false, "shared_team_ids": [team_id], "pending_connected_team_ids": [],
        "is_member": ch.bot_is_member,
        "topic": { "value": "", "creator": "", "last_set": 0 },
        "purpose": { "value": "", "creator": "", "last_set": 0 },
        "previous_names": [],
    });
    if ch.bot_is_member {
        conversation["last_read"] = json!(latest_ts(c.w));
    }
    if matches!(
        c.p.str("include_num_members").as_deref(),
        Some("true" | "1")
    ) {
        conversation["num_members"] = json!(ch.members.len());
    }
    Ok(fields([("channel", conversation)]))
}

#[cfg(test)]
mod tests {
    use super::ts_micros;

    #[test]
    fn timestamps_read_like_slack() {
        assert_eq!(ts_micros("1800000000.000042"), Some(1_800_000_000_000_042));
        assert_eq!(ts_micros("1800000000.5"), Some(1_800_000_000_500_000));
        assert_eq!(ts_micros("1800000000"), Some(1_800_000_000_000_000));
        assert_eq!(ts_micros("yesterday"), None);
        assert_eq!(ts_micros("-1.0"), None);
    }
}
