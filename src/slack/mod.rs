//! Everything that speaks Slack.
//! - `inbound`: `/slack/events`, `/slack/interactions`, `/slack/commands`;
//! - `outbound`: the Web API client and the outbox workers;
//! - `emulator`: a local Slack Web API for tests and the sandbox;
//! - `signature`: request signing, shared by both sides.

pub mod emulator;
pub mod inbound;
pub mod outbound;
pub mod signature;
