//! The scheduler: turns cadences into rounds and deliveries, hands due DMs to the outbox,
//! sends reminders, closes (and seals) rounds when their window ends, and posts the digest
//! at each firing of a program's digest cadence (`digest.rs`).
//!
//! Every step is idempotent (unique keys and conditional state changes), so several ticks at
//! once, several replicas or a restart mid-tick never create or send anything twice. There is
//! no leader; time comes from the injected clock.

mod digest;
pub mod preview;
mod tick;

pub use tick::{Scheduler, SendNowError, SentNow, TickReport};
