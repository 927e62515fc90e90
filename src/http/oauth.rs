//! Installing pulseloop into a workspace with OAuth v2 (docs/install.md):
//! - `GET /slack/install` redirects to Slack's authorize page with the client id, the bot
//!   scopes ([`crate::slack::oauth::BOT_SCOPES`]), the redirect URL and a signed, expiring,
//!   single-use `state`;
//! - `GET /slack/oauth/callback?code&state` checks the state, exchanges the code with
//!   `oauth.v2.access`, stores the installation with its bot token sealed, and says so in a
//!   small page. A bad, expired or replayed state, or a code Slack refuses, is a 400 with
//!   `{"error","detail"}`, and nothing is stored.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::{SecretBox, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::slack::oauth::{OAuthKeys, BOT_SCOPES};
use crate::slack::outbound::SlackError;
use crate::storage::installations::NewInstallation;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/install", get(install))
        .route("/slack/oauth/callback", get(callback))
}

/// The client id and secret and the keys, or why installing is off.
fn oauth_setup(state: &AppState) -> ApiResult<(String, SecretString, OAuthKeys)> {
    let slack = &state.settings.slack;
    let (Some(client_id), Some(secret)) = (&slack.client_id, &slack.client_secret) else {
        return Err(ApiError::NotFound(
            "installing with OAuth is not configured: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"
                .into(),
        ));
    };
    let Some(keys) = state.pulses.teams.keys() else {
        return Err(ApiError::Unavailable(
            "PULSELOOP_ENCRYPTION_KEY is not set: bot tokens cannot be stored encrypted, so \
             installing is off"
                .into(),
        ));
    };
    Ok((client_id.clone(), secret.clone(), keys.clone()))
}

/// The callback URL: `slack.redirect_url`, else this server's `/slack/oauth/callback` on the
/// Host the installer used (http on a loopback host, https elsewhere).
fn redirect_url(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(url) = &state.settings.slack.redirect_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .ok_or_else(|| {
            ApiError::BadRequest("no usable Host header; set SLACK_REDIRECT_URL".into())
        })?;
    let loopback = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|l| host == *l || host.starts_with(&format!("{l}:")));
    let scheme = if loopback { "http" } else { "https" };
    Ok(format!("{scheme}://{host}/slack/oauth/callback"))
}

#[tracing::instrument(skip_all)]
async fn install(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let (client_id, _, keys) = oauth_setup(&state)?;
    let redirect = redirect_url(&state, &headers)?;
    let query = serde_urlencoded::to_string([
        ("client_id", client_id.as_str()),
        ("scope", &BOT_SCOPES.join(",")),
        ("redirect_uri", &redirect),
        ("state", &keys.new_state(state.clock.now())),
    ])
    .map_err(|e| ApiError::Internal(e.into()))?;
    let location = format!("{}?{query}", state.settings.oauth_authorize_url());
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    /// Slack's `error=access_denied` when the installer cancelled.
    error: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> ApiResult<Response> {
    let (client_id, secret, keys) = oauth_setup(&state)?;
    let now = state.clock.now();
    let given = q
        .state
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("the callback has no state".into()))?;
    let verified = keys.verify_state(given, now).map_err(|e| {
        tracing::warn!(error = %e, "OAuth callback refused: bad state");
        ApiError::BadRequest(e.to_string())
    })?;
    if let Some(error) = q.error {
        return Err(ApiError::BadRequest(format!(
            "Slack did not install the app: {error}"
        )));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the callback has no code".into()))?;
    // Single use: a replayed callback URL (browser history, a log) is refused here.
    if !state
        .store
        .use_oauth_state(&verified.nonce, verified.expires_at, now)
        .await?
    {
        tracing::warn!("OAuth callback refused: the state was used before");
        return Err(ApiError::BadRequest(
            "this install link was used already; start again from /slack/install".into(),
        ));
    }
    let redirect = redirect_url(&state, &headers)?;
    let answer = state
        .pulses
        .teams
        .default_client()
        .oauth_v2_access(&client_id, &secret, code, &redirect)
        .await
        .map_err(|e| match e {
            SlackError::Api { code, .. } => {
                ApiError::BadRequest(format!("Slack refused the install code: {code}"))
            }
            other => ApiError::Unavailable(format!("Slack could not be reached: {other}")),
        })?;
    let installation = installation_of(&answer, &keys)?;
    state.store.save_installation(&installation, now).await?;
    state.pulses.teams.forget(&installation.team_id);
    let team = slack_facts::ids::TeamId::from(installation.team_id.as_str());
    if let Err(e) = state.store.record_workspace(&team, "oauth", now).await {
        tracing::warn!(error = %e, "could not record the workspace");
    }
    tracing::info!(team = %installation.team_id, scopes = %installation.scopes, "installed into a workspace");
    Ok(Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>pulseloop installed</title>\
         <h1>pulseloop installed into {}</h1><p>You can close this page. Members of its \
         programs get their pulses in Slack.</p>",
        escape(&installation.team_name)
    ))
    .into_response())
}

/// The installation in Slack's `oauth.v2.access` answer, its token sealed at once.
fn installation_of(answer: &Value, keys: &OAuthKeys) -> ApiResult<NewInstallation> {
    let text = |pointer: &str| answer.pointer(pointer).and_then(Value::as_str);
    let missing =
        |what: &str| ApiError::Unavailable(format!("Slack's oauth.v2.access answer has no {what}"));
    let team_id = text("/team/id").ok_or_else(|| missing("team.id"))?;
    if text("/token_type") != Some("bot") {
        return Err(missing("bot token"));
    }
    let token: SecretBox<str> = text("/access_token")
        .filter(|t| t.starts_with("xoxb-"))
        .map(SecretString::from)
        .ok_or_else(|| missing("bot access_token"))?;
    Ok(NewInstallation {
        team_id: team_id.to_string(),
        team_name: text("/team/name").unwrap_or(team_id).to_string(),
        app_id: text("/app_id").map(String::from),
        bot_user_id: text("/bot_user_id")
            .ok_or_else(|| missing("bot_user_id"))?
            .to_string(),
        scopes: text("/scope").unwrap_or_default().to_string(),
        token_sealed: keys.seal_token(team_id, &token),
        installer_id: text("/authed_user/id").map(String::from),
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
