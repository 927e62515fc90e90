//! Slack outbound: the Web API client, the durable outbox's workers and the rate limits
//! every call obeys (the client applies them; nothing reaches Slack around them).

pub mod client;
pub mod rate_limit;
pub mod response_url;
pub mod teams;
pub mod upload;
pub mod worker;

pub use client::{methods, ErrorClass, Method, Patience, Permit, SlackClient, SlackError};
pub use rate_limit::{Denial, RateLimitConfig, RateLimiter};
pub use teams::{TeamRoute, Teams};
pub use worker::{OutboxWorker, StepOutcome};
