//! Slack facts that both sides of a Slack app must agree on, kept in one place so the bot and
//! the emulator that tests it can never drift apart:
//! - [`signature`]: request signing (`v0` HMAC-SHA256) and its five-minute window;
//! - [`rate_tiers`]: the Web API rate-limit tier of each method, and what a tier allows;
//! - [`block_kit`]: Block Kit's size limits;
//! - [`ids`]: Slack IDs as types (`UserId`, `ChannelId`, `TeamId`, `MessageTs`).
//!
//! The sources are Slack's published docs and spec files; `docs/slack-facts.md` in the
//! pulseloop repository says which fact comes from where.

pub mod block_kit;
pub mod ids;
pub mod rate_tiers;
pub mod signature;
