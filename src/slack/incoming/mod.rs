//! What Slack sends us, as types: the payloads of `/slack/events`, `/slack/interactions` and
//! `/slack/commands`, and the `/pulse` command's text. Pure serde and parsing, no HTTP: the
//! routes that receive them live in `http::slack`.

pub mod commands;
pub mod payloads;
