//! Slack's OAuth v2 install pages: `GET /oauth/v2/authorize` (approved at once: it redirects
//! to the app's `redirect_uri` with a code and the app's `state`, as Slack does after the
//! installer clicks "Allow"), and the workspaces an app can be installed into besides the
//! configured one (`POST /_control/teams`), and revoking a workspace's tokens (uninstall).
//! The code is exchanged by `oauth.v2.access` (`methods/auth.rs`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::control::{body, cross_site, refuse};
use crate::state::{OAuthCode, Shared};

/// Scope names Slack knows look like `chat:write`, `im:history`, `commands`.
fn is_scope(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c == ':' || c == '.' || c == '_')
}

/// Slack shows an error page (not a redirect) when the request itself is wrong.
fn error_page(error: &str, detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><title>Slack: {error}</title><h1>Something went wrong</h1>\
             <p><code>{error}</code>: {}</p>",
            detail.replace('<', "&lt;")
        ),
    )
        .into_response()
}

/// `GET /oauth/v2/authorize?client_id&scope&redirect_uri&state[&team]`: checks the client id,
/// the scopes and the redirect URL like Slack, then approves for the installer and redirects
/// to `redirect_uri?code=…&state=…`. `team` picks the workspace (the configured one when left
/// out; others are added with `POST /_control/teams`).
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let mut w = shared.world();
    let Some((client_id, _)) = w.oauth_client.clone() else {
        return error_page("invalid_client_id", "this app has no OAuth client");
    };
    if q.get("client_id") != Some(&client_id) {
        return error_page("invalid_client_id", "unknown client_id");
    }
    let scope = q.get("scope").map(String::as_str).unwrap_or("");
    let scopes: Vec<&str> = scope.split(',').map(str::trim).collect();
    if scope.trim().is_empty() || !scopes.iter().all(|s| is_scope(s)) {
        return error_page(
            "invalid_scope",
            "scope must list bot scopes, comma-separated",
        );
    }
    let Some(redirect) = q.get("redirect_uri").cloned() else {
        return error_page("bad_redirect_uri", "redirect_uri is missing");
    };
    let well_formed = (redirect.starts_with("http://") || redirect.starts_with("https://"))
        && !redirect.contains('#');
    let registered = w
        .oauth_redirect_url
        .as_ref()
        .is_none_or(|r| redirect.starts_with(r.as_str()));
    if !well_formed || !registered {
        return error_page(
            "bad_redirect_uri",
            "redirect_uri does not match the app's redirect URL",
        );
    }
    let team_id = q
        .get("team")
        .cloned()
        .unwrap_or_else(|| w.config.team_id.clone());
    let team_name = if team_id == w.config.team_id {
        w.config.team_name.clone()
    } else if let Some(name) = w.teams.get(&team_id) {
        name.clone()
    } else {
        return error_page("team_not_found", "no such workspace");
    };
    let code = format!(
        "{}.{}.{:016x}",
        fastrand::u64(1_000_000_000..10_000_000_000),
        fastrand::u64(1_000_000_000..10_000_000_000),
        fastrand::u64(..)
    );
    w.oauth_codes.insert(
        code.clone(),
        OAuthCode {
            team_id,
            team_name,
            issued: Instant::now(),
            used: false,
            redirect_uri: Some(redirect.clone()),
            scopes: Some(scopes.join(",")),
        },
    );
    let mut query = vec![("code", code)];
    if let Some(state) = q.get("state") {
        query.push(("state", state.clone()));
    }
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect}{sep}{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamRequest {
    team_id: String,
    team_name: String,
}

/// `POST /_control/teams {team_id, team_name}`: a workspace the app can be installed into.
pub(crate) async fn add_team(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Some(refused) = cross_site(&headers, &shared) {
        return refused;
    }
    let request: TeamRequest = match body(&bytes) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let valid = request.team_id.starts_with('T')
        && request.team_id.len() > 1
        && request.team_id.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("'{}' is not a team id (T…)", request.team_id),
        );
    }
    shared
        .world()
        .add_team(&request.team_id, &request.team_name);
    (
        StatusCode::CREATED,
        Json(json!({ "team_id": request.team_id })),
    )
        .into_response()
}

/// `POST /_control/teams/{id}/revoke`: every token of the workspace stops working
/// (`token_revoked`), as after an uninstall. Answers how many were revoked.
pub(crate) async fn revoke_team(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(team_id): Path<String>,
) -> Response {
    if let Some(refused) = cross_site(&headers, &shared) {
        return refused;
    }
    let revoked = shared.world().revoke_team(&team_id);
    Json(json!({ "revoked": revoked })).into_response()
}

impl crate::state::World {
    pub(crate) fn add_team(&mut self, team_id: &str, team_name: &str) {
        self.teams
            .insert(team_id.to_string(), team_name.to_string());
    }

    /// Revokes every token of `team_id`; how many there were.
    pub(crate) fn revoke_team(&mut self, team_id: &str) -> usize {
        let tokens: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, install)| install.team_id == team_id)
            .map(|(token, _)| token.clone())
            .collect();
        for token in &tokens {
            self.tokens.remove(token);
            self.revoked_tokens.insert(token.clone());
        }
        tokens.len()
    }
}
