//! The product logic behind Slack's requests: slash commands, interactions and events.

pub mod answers;
pub mod catalog;
pub mod commands;
pub mod events;
pub mod interactions;
pub mod render;
pub mod sync;
