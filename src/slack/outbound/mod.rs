//! Slack outbound: the Web API client, the durable outbox's workers and the rate limits
//! they obey.

pub mod client;
pub mod rate_limit;
pub mod worker;

pub use client::{ErrorClass, SlackClient, SlackError};
pub use rate_limit::{RateLimitConfig, RateLimiter};
pub use worker::{OutboxWorker, StepOutcome};
