//! pulseloop: a Slack bot that runs the continuous feedback loop of a coaching program.
//!
//! A tour of the crate:
//! - [`config`]: server settings and programs as code, validated into typed values;
//! - [`storage`]: SQLite / PostgreSQL behind one `Store`, with migrations in `migrations/`;
//! - [`slack`]: inbound (signed requests → typed payloads), outbound (client, outbox
//!   workers, rate limits) and the local Web API emulator used by tests and the sandbox;
//! - [`pulse`]: what happens when people answer, click or type `/pulse`;
//! - [`http`]: the router, error mapping and operations endpoints;
//! - [`startup`] and [`cli`]: building, running and stopping the service.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod pulse;
pub mod scheduler;
pub mod slack;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
