//! Everything the bot says to Slack and hears from it.
//! - `incoming`: the types of what Slack sends (event, interaction and command payloads,
//!   the `/pulse` text); the routes that receive them are in `http::slack`;
//! - `outbound`: the Web API client and the outbox workers;
//! - `app`: what the Slack app is configured with (scopes, events, shortcuts), as the
//!   manifests in `deploy/` declare it;
//! - `socket`: Socket Mode, Slack's requests over a WebSocket the bot opens;
//! - `protocol`: the ids and keys pulseloop writes into Slack and parses back;
//! - `signature`: request signing, from the `slack-facts` crate the emulator uses too.
//!
//! The local Slack Web API used by the tests and the sandbox is its own crate,
//! `slack-emulator` (`crates/slack-emulator`).

pub mod app;
pub mod incoming;
pub mod oauth;
pub mod outbound;
pub mod protocol;
pub mod socket;
pub use slack_facts::signature;
