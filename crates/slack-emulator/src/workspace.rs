//! The workspace file: the people, channels, user groups and apps of an emulated workspace,
//! in TOML or JSON (by extension: `.json` is JSON, anything else TOML). The same shape is
//! accepted by `POST /_control/workspace`. See the crate README for an example.

use serde::{Deserialize, Serialize};
use std::path::Path;

use super::model::EmulatedUser;

/// A whole workspace file. Every list may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// The workspace's id (`T…`); only read at start (the `--workspace` file).
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub team_name: Option<String>,
    #[serde(default)]
    pub users: Vec<WorkspaceUser>,
    #[serde(default)]
    pub channels: Vec<WorkspaceChannel>,
    #[serde(default)]
    pub usergroups: Vec<WorkspaceGroup>,
    #[serde(default)]
    pub apps: Vec<App>,
}

/// A member: `id` and `tz` are what matter most; the rest has Slack-like defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUser {
    pub id: String,
    /// The handle; defaults to the id in lower case.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    /// IANA zone; UTC when left out.
    #[serde(default = "utc")]
    pub tz: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub is_restricted: bool,
    #[serde(default)]
    pub status_text: String,
    #[serde(default)]
    pub status_emoji: String,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceChannel {
    /// `C…` (public) or `G…` (private).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    /// Whether the bots of the workspace are members (posting needs it).
    #[serde(default = "yes")]
    pub bot_is_member: bool,
    #[serde(default)]
    pub is_private: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceGroup {
    /// `S…`.
    pub id: String,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

/// An app installed in the workspace: its bot token (with its scopes), and where Slack sends
/// its events, interactions and slash commands, signed with its signing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub app_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The bot user (`U…`), added to the directory as a bot.
    pub bot_user_id: String,
    /// `B…`.
    pub bot_id: String,
    /// The bot token (`xoxb-…`) the Web API accepts for this app.
    pub token: String,
    /// Granted scopes; left out: every scope (no `missing_scope`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// The app's base URL: events go to `{request_url}/slack/events`, interactions to
    /// `/slack/interactions`, slash commands to `/slack/commands`, unless the three URLs
    /// below say otherwise.
    #[serde(default)]
    pub request_url: Option<String>,
    #[serde(default)]
    pub events_url: Option<String>,
    #[serde(default)]
    pub interactivity_url: Option<String>,
    #[serde(default)]
    pub commands_url: Option<String>,
    /// OAuth client credentials oauth.v2.access accepts.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Where one kind of request to the bot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Events,
    Interactions,
    Commands,
}

impl App {
    /// The full URL for `target`, if the app has one.
    pub fn url_for(&self, target: Target) -> Option<String> {
        let (explicit, path) = match target {
            Target::Events => (&self.events_url, "/slack/events"),
            Target::Interactions => (&self.interactivity_url, "/slack/interactions"),
            Target::Commands => (&self.commands_url, "/slack/commands"),
        };
        explicit.clone().or_else(|| {
            self.request_url
                .as_ref()
                .map(|base| format!("{}{path}", base.trim_end_matches('/')))
        })
    }
}

fn is_id(id: &str, prefixes: &[char]) -> bool {
    id.starts_with(prefixes) && id.len() > 1 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

impl WorkspaceUser {
    pub fn to_user(&self) -> EmulatedUser {
        let mut u = EmulatedUser::new(&self.id, &self.tz);
        if let Some(name) = &self.name {
            u.name = name.clone();
        }
        if let Some(real_name) = &self.real_name {
            u.real_name = real_name.clone();
        }
        u.email = self.email.clone();
        u.title = self.title.clone();
        u.deleted = self.deleted;
        u.is_bot = self.is_bot;
        u.is_restricted = self.is_restricted;
        u.status_text = self.status_text.clone();
        u.status_emoji = self.status_emoji.clone();
        u
    }
}

impl Workspace {
    /// Reads and checks a workspace file; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Workspace, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the workspace file: {e}", path.display()))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let workspace: Workspace = if json {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        workspace
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(workspace)
    }

    /// The checks a file or a control call must pass: well-formed ids, real zones, URLs.
    pub fn check(&self) -> Result<(), String> {
        for u in &self.users {
            if !is_id(&u.id, &['U', 'W']) {
                return Err(format!(
                    "users: '{}' is not a user id (U… or W…, letters and digits)",
                    u.id
                ));
            }
            if u.tz.parse::<chrono_tz::Tz>().is_err() {
                return Err(format!(
                    "users.{}: '{}' is not an IANA time zone",
                    u.id, u.tz
                ));
            }
        }
        for c in &self.channels {
            if !is_id(&c.id, &['C', 'G']) {
                return Err(format!(
                    "channels: '{}' is not a channel id (C… or G…)",
                    c.id
                ));
            }
            if c.name.is_empty() || c.name.starts_with('#') {
                return Err(format!(
                    "channels.{}: the name must be given without '#'",
                    c.id
                ));
            }
        }
        for g in &self.usergroups {
            if !is_id(&g.id, &['S']) {
                return Err(format!("usergroups: '{}' is not a group id (S…)", g.id));
            }
        }
        for a in &self.apps {
            if a.token.is_empty() {
                return Err(format!("apps.{}: the token is empty", a.app_id));
            }
            if !is_id(&a.bot_user_id, &['U', 'W']) || !is_id(&a.bot_id, &['B']) {
                return Err(format!(
                    "apps.{}: bot_user_id must be U…, bot_id B…",
                    a.app_id
                ));
            }
            let urls = [
                &a.request_url,
                &a.events_url,
                &a.interactivity_url,
                &a.commands_url,
            ];
            for url in urls.into_iter().flatten() {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("apps.{}: '{url}' is not an http(s) URL", a.app_id));
                }
            }
            let sends = urls.iter().any(|u| u.is_some());
            if sends && a.signing_secret.as_deref().is_none_or(str::is_empty) {
                return Err(format!(
                    "apps.{}: a request URL needs a signing_secret",
                    a.app_id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_files_read_alike_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("emu-ws-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let toml_path = dir.join("ws.toml");
        std::fs::write(
            &toml_path,
            "[[users]]\nid = \"U1\"\ntz = \"Europe/Paris\"\n[[apps]]\napp_id = \"A1\"\nbot_user_id = \"U0BOT\"\nbot_id = \"B1\"\ntoken = \"xoxb-1\"\nscopes = [\"chat:write\"]\n",
        )
        .expect("write");
        let json_path = dir.join("ws.json");
        std::fs::write(
            &json_path,
            r#"{"users":[{"id":"U1","tz":"Europe/Paris"}],"apps":[{"app_id":"A1","bot_user_id":"U0BOT","bot_id":"B1","token":"xoxb-1","scopes":["chat:write"]}]}"#,
        )
        .expect("write");
        let a = Workspace::load(&toml_path).expect("toml");
        let b = Workspace::load(&json_path).expect("json");
        assert_eq!(a, b);
        assert_eq!(a.users[0].to_user().tz, "Europe/Paris");

        std::fs::write(
            &toml_path,
            "[[users]]\nid = \"U1\"\ntz = \"Mars/Olympus\"\n",
        )
        .expect("w");
        let e = Workspace::load(&toml_path).unwrap_err();
        assert!(e.contains("ws.toml") && e.contains("Mars/Olympus"), "{e}");
        std::fs::write(&toml_path, "[[users]]\nid = \"U1\"\ncolour = \"red\"\n").expect("w");
        assert!(Workspace::load(&toml_path).unwrap_err().contains("colour"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
