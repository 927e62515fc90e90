//! auth.test and oauth.v2.access (docs/slack-facts.md, "OAuth v2 install and auth.test").

use serde_json::{json, Value};

use super::{fields, ApiError, Call, Reply};
use crate::state::{Install, OAUTH_CODE_TTL};

/// The bot scopes every emulated installation is granted.
const BOT_SCOPES: &str =
    "chat:write,im:write,im:history,users:read,usergroups:read,commands,files:write";

pub(super) fn test(c: &mut Call<'_>) -> Reply {
    let install = c.install();
    let user =
        c.w.directory
            .user(&install.bot_user_id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| "bot".to_string());
    let domain = install.team_name.to_lowercase().replace(' ', "-");
    Ok(fields([
        ("url", json!(format!("https://{domain}.slack.com/"))),
        ("team", json!(install.team_name)),
        ("user", json!(user)),
        ("team_id", json!(install.team_id)),
        ("user_id", json!(install.bot_user_id)),
        ("bot_id", json!(install.bot_id)),
        ("is_enterprise_install", json!(false)),
    ]))
}

/// Exchanges a code from [`crate::Emulator::issue_oauth_code`] for a bot
/// token that the emulator accepts from then on, mapped to the code's team.
pub(super) fn oauth_v2_access(c: &mut Call<'_>) -> Reply {
    let client_id = c.p.str("client_id").ok_or("invalid_client_id")?;
    let (expected_id, expected_secret) = c.w.oauth_client.clone().ok_or("invalid_client_id")?;
    if client_id != expected_id {
        return Err(ApiError::new("invalid_client_id"));
    }
    if c.p.str("client_secret").as_deref() != Some(expected_secret.as_str()) {
        return Err(ApiError::new("bad_client_secret"));
    }
    let code = c.p.str("code").ok_or("invalid_code")?;
    let redirect_uri = c.p.str("redirect_uri");
    let grant = c.w.oauth_codes.get_mut(&code).ok_or("invalid_code")?;
    if grant.used || grant.issued.elapsed() > OAUTH_CODE_TTL {
        return Err(ApiError::new("invalid_code"));
    }
    // Slack: the redirect_uri given here must be the one the authorize page was given.
    if let Some(expected) = &grant.redirect_uri {
        if redirect_uri.as_deref() != Some(expected.as_str()) {
            return Err(ApiError::new("bad_redirect_uri"));
        }
    }
    grant.used = true;
    let (team_id, team_name) = (grant.team_id.clone(), grant.team_name.clone());
    let scopes = grant
        .scopes
        .clone()
        .unwrap_or_else(|| BOT_SCOPES.to_string());

    let (bot_user_id, bot_id) = if team_id == c.w.config.team_id {
        (c.w.config.bot_user_id.clone(), c.w.config.bot_id.clone())
    } else {
        (c.w.next_id("U"), c.w.next_id("B"))
    };
    let token = format!(
        "xoxb-{}-{}-{:024x}",
        team_id,
        fastrand::u64(1_000_000_000..10_000_000_000),
        fastrand::u128(..)
    );
    c.w.tokens.insert(
        token.clone(),
        Install {
            team_id: team_id.clone(),
            team_name: team_name.clone(),
            bot_user_id: bot_user_id.clone(),
            bot_id,
        },
    );
    c.w.token_scopes.insert(
        token.clone(),
        scopes.split(',').map(str::to_string).collect(),
    );
    let installer = c.w.next_id("U");
    Ok(fields([
        ("app_id", json!(c.w.config.app_id)),
        (
            "authed_user",
            json!({ "id": installer, "scope": "", "token_type": "user" }),
        ),
        ("scope", json!(scopes)),
        ("token_type", json!("bot")),
        ("access_token", json!(token)),
        ("bot_user_id", json!(bot_user_id)),
        ("team", json!({ "id": team_id, "name": team_name })),
        ("enterprise", Value::Null),
        ("is_enterprise_install", json!(false)),
    ]))
}
