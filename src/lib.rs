//! pulseloop: a Slack bot that runs the continuous feedback loop of a coaching program.
//!
//! A tour of the crate, bottom layer first (a module uses only those before it; the check is
//! `tests/layers.rs`, the picture docs/architecture.md):
//! - [`clock`], [`telemetry`], [`tls`]: the injected clock, logging and metrics, TLS set-up;
//! - [`domain`]: the pure model: cadences, programs and their anonymity rules, planning;
//! - [`config`]: server settings and programs as code, validated into domain values;
//! - [`storage`]: SQLite / PostgreSQL behind one `Store`, with migrations in `migrations/`;
//! - [`slack`]: the types of what Slack sends (`incoming`) and the Web API client, outbox
//!   workers and rate limits (`outbound`);
//! - [`pulse`]: the services behind answers, clicks, `/pulse`, events and config sync;
//! - [`scheduler`]: the service that plans, sends, reminds, closes and seals rounds;
//! - [`http`]: every handler (`/slack/*` verified and replay-guarded, ops, admin), the shared
//!   state, and the one mapping of service results and errors to responses;
//! - [`startup`] and [`cli`]: building, running and stopping the service; [`demo`] (between
//!   them): the whole loop against the emulator on an accelerated clock.

pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod digest;
pub mod domain;
pub mod http;
pub mod memory;
pub mod pulse;
pub mod scheduler;
pub mod slack;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
