//! Black-box tests: the real app on a random port, its own database, a real Slack emulator
//! over HTTP on 127.0.0.1. Run on SQLite by default; on PostgreSQL with
//! PULSELOOP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres.

mod actions;
mod anonymity;
mod chart;
mod cli;
mod config_sync;
mod delivery;
mod digest;
mod emulator_limits;
mod events;
mod group_commit;
mod helpers;
mod home;
mod kpis;
mod limiter;
mod members;
mod messages;
mod my_data;
mod operator;
mod ops;
mod outbox;
mod protocol;
pub mod pulses;
mod replays;
mod report;
mod response_url;
mod sandbox;
mod sandbox_state;
mod schedule;
mod shared_limits;
mod signature;
mod slow_clients;
mod state_checks;
mod walkthrough;
mod wins;
