//! views.open / views.push (single-use, 3-second trigger_id), views.update (by id or
//! external_id, with `hash` as an optimistic lock) and views.publish (Home tabs).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{fields, ApiError, Call, Reply};
use crate::blocks::{fill_block_ids, validate_view, ViewKind};
use crate::model::EmulatedView;
use crate::state::{Install, World, TRIGGER_TTL};

/// The `view` parameter, validated as `kind`.
fn view_param(c: &Call<'_>, kind: ViewKind) -> Result<Value, ApiError> {
    let view = c.p.get("view").ok_or_else(|| ApiError::missing("view"))?;
    let errors = validate_view(view, kind);
    if errors.is_empty() {
        let mut view = view.clone();
        if let Some(blocks) = view.get_mut("blocks") {
            fill_block_ids(blocks);
        }
        Ok(view)
    } else {
        Err(ApiError::with_messages("invalid_arguments", errors))
    }
}

/// Consumes a trigger_id; the user it was issued for, if any.
fn exchange_trigger(c: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let invalid =
        || ApiError::with_messages("invalid_arguments", vec!["invalid `trigger_id`".into()]);
    let id = c.p.str("trigger_id").ok_or_else(invalid)?;
    let trigger = c.w.triggers.get_mut(&id).ok_or_else(invalid)?;
    if trigger.used {
        return Err(ApiError::new("exchanged_trigger_id"));
    }
    if c.instant.saturating_duration_since(trigger.issued) > TRIGGER_TTL {
        return Err(ApiError::new("expired_trigger_id"));
    }
    trigger.used = true;
    Ok(trigger.user.clone())
}

/// The trigger must be valid before anything else is looked at, but it is only used up when
/// the view is accepted too.
fn check_trigger(c: &Call<'_>) -> Result<(), ApiError> {
    let invalid =
        || ApiError::with_messages("invalid_arguments", vec!["invalid `trigger_id`".into()]);
    let id = c.p.str("trigger_id").ok_or_else(invalid)?;
    let trigger = c.w.triggers.get(&id).ok_or_else(invalid)?;
    if trigger.used {
        Err(ApiError::new("exchanged_trigger_id"))
    } else if c.instant.saturating_duration_since(trigger.issued) > TRIGGER_TTL {
        Err(ApiError::new("expired_trigger_id"))
    } else {
        Ok(())
    }
}

fn external_id(view: &Value) -> Option<String> {
    view.get("external_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn check_external_id_free(
    w: &World,
    external: &Option<String>,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let taken = external.as_ref().is_some_and(|e| {
        w.views
            .iter()
            .any(|v| v.external_id.as_ref() == Some(e) && Some(v.id.as_str()) != except)
    });
    if taken {
        Err(ApiError::new("duplicate_external_id"))
    } else {
        Ok(())
    }
}

/// Identity of a view within its stack.
struct Ids<'a> {
    id: &'a str,
    hash: &'a str,
    root_view_id: &'a str,
    previous_view_id: Option<&'a str>,
}

/// A view object as Slack returns it (docs/slack-facts.md, "Interactions and views").
fn view_object(input: &Value, ids: Ids<'_>, install: &Install, app_id: &str) -> Value {
    let copy = |key: &str, default: Value| input.get(key).cloned().unwrap_or(default);
    let mut view = Map::new();
    view.insert("id".into(), json!(ids.id));
    view.insert("team_id".into(), json!(install.team_id));
    view.insert("type".into(), copy("type", json!("modal")));
    for key in ["title", "submit", "close"] {
        if let Some(v) = input.get(key).filter(|v| !v.is_null()) {
            view.insert(key.into(), v.clone());
        }
    }
    view.insert("blocks".into(), copy("blocks", json!([])));
    view.insert(
        "private_metadata".into(),
        copy("private_metadata", json!("")),
    );
    view.insert("callback_id".into(), copy("callback_id", json!("")));
    view.insert("state".into(), json!({ "values": {} }));
    view.insert("hash".into(), json!(ids.hash));
    view.insert(
        "clear_on_close".into(),
        copy("clear_on_close", json!(false)),
    );
    view.insert(
        "notify_on_close".into(),
        copy("notify_on_close", json!(false)),
    );
    view.insert("root_view_id".into(), json!(ids.root_view_id));
    view.insert("previous_view_id".into(), json!(ids.previous_view_id));
    view.insert("app_id".into(), json!(app_id));
    view.insert("external_id".into(), copy("external_id", json!("")));
    view.insert("app_installed_team_id".into(), json!(install.team_id));
    view.insert("bot_id".into(), json!(install.bot_id));
    Value::Object(view)
}

fn store_new(
    c: &mut Call<'_>,
    input: &Value,
    kind: ViewKind,
    user: Option<String>,
    previous: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Reply {
    let install = c.install();
    let id = c.w.next_id("V");
    let hash = c.w.next_hash(now);
    let (root, previous_id) = match &previous {
        Some((root, prev)) => (root.clone(), Some(prev.as_str())),
        None => (id.clone(), None),
    };
    let view = view_object(
        input,
        Ids {
            id: &id,
            hash: &hash,
            root_view_id: &root,
            previous_view_id: previous_id,
        },
        &install,
        &c.w.config.app_id,
    );
    c.w.views.push(EmulatedView {
        id,
        user,
        view: view.clone(),
        hash,
        kind,
        external_id: external_id(input),
    });
    Ok(fields([("view", view)]))
}

pub(super) fn open(c: &mut Call<'_>) -> Reply {
    check_trigger(c)?;
    let input = view_param(c, ViewKind::Modal)?;
    let external = external_id(&input);
    check_external_id_free(c.w, &external, None)?;
    let user = exchange_trigger(c)?;
    let now = c.now;
    store_new(c, &input, ViewKind::Modal, user, None, now)
}

/// Like views.open, on top of the user's most recent modal.
pub(super) fn push(c: &mut Call<'_>) -> Reply {
    check_trigger(c)?;
    let input = view_param(c, ViewKind::Modal)?;
    let external = external_id(&input);
    check_external_id_free(c.w, &external, None)?;
    let user = exchange_trigger(c)?;
    let previous =
        c.w.views
            .iter()
            .rev()
            .find(|v| v.kind == ViewKind::Modal && v.user == user)
            .map(|v| {
                let root = v.view["root_view_id"].as_str().unwrap_or(&v.id).to_string();
                (root, v.id.clone())
            });
    let now = c.now;
    store_new(c, &input, ViewKind::Modal, user, previous, now)
}

pub(super) fn update(c: &mut Call<'_>) -> Reply {
    let index = match (c.p.str("view_id"), c.p.str("external_id")) {
        (Some(id), _) => c.w.views.iter().position(|v| v.id == id),
        (None, Some(ext)) => {
            c.w.views
                .iter()
                .position(|v| v.external_id.as_deref() == Some(ext.as_str()))
        }
        (None, None) => return Err(ApiError::missing("view_id")),
    }
    .ok_or("not_found")?;
    let kind = c.w.views[index].kind;
    let input = view_param(c, kind)?;
    replace(c, index, &input)
}

/// Replaces a stored view, checking `hash` first, keeping its id and stack position.
fn replace(c: &mut Call<'_>, index: usize, input: &Value) -> Reply {
    if let Some(hash) = c.p.str("hash") {
        if hash != c.w.views[index].hash {
            return Err(ApiError::new("hash_conflict"));
        }
    }
    let existing = c.w.views[index].clone();
    let external = external_id(input).or(existing.external_id.clone());
    check_external_id_free(c.w, &external, Some(&existing.id))?;
    let install = c.install();
    let hash = c.w.next_hash(c.now);
    let mut input = input.clone();
    if let (Some(ext), Some(obj)) = (&external, input.as_object_mut()) {
        obj.insert("external_id".into(), json!(ext));
    }
    let view = view_object(
        &input,
        Ids {
            id: &existing.id,
            hash: &hash,
            root_view_id: existing.view["root_view_id"]
                .as_str()
                .unwrap_or(&existing.id),
            previous_view_id: existing.view["previous_view_id"].as_str(),
        },
        &install,
        &c.w.config.app_id,
    );
    let stored = &mut c.w.views[index];
    stored.view = view.clone();
    stored.hash = hash;
    stored.external_id = external;
    Ok(fields([("view", view)]))
}

pub(super) fn publish(c: &mut Call<'_>) -> Reply {
    let user =
        c.p.str("user_id")
            .ok_or_else(|| ApiError::missing("user_id"))?;
    // Slack answers an unknown user_id as a bad argument, and a deactivated one as disabled.
    match c.w.directory.user(&user) {
        None => {
            return Err(ApiError::with_messages(
                "invalid_arguments",
                vec!["invalid `user_id`".into()],
            ))
        }
        Some(u) if u.deleted => return Err(ApiError::new("user_disabled")),
        Some(_) => {}
    }
    let input = view_param(c, ViewKind::Home)?;
    let existing =
        c.w.views
            .iter()
            .position(|v| v.kind == ViewKind::Home && v.user.as_deref() == Some(user.as_str()));
    match existing {
        Some(index) => replace(c, index, &input),
        None => {
            check_external_id_free(c.w, &external_id(&input), None)?;
            let now = c.now;
            store_new(c, &input, ViewKind::Home, Some(user), None, now)
        }
    }
}
