//! Black-box tests: the real app on a random port, its own database, a real Slack emulator
//! over HTTP on 127.0.0.1. Run on SQLite by default; on PostgreSQL with
//! PULSELOOP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres.

mod actions;
mod admin_config;
mod admin_slack;
mod anonymity;
mod audit_paging;
mod chart;
mod cli;
mod config_sync;
mod delivery;
mod demo;
mod digest;
mod emulator_limits;
mod events;
mod export;
mod group_commit;
mod helpers;
mod home;
mod kpis;
mod limiter;
mod members;
mod messages;
mod my_data;
mod oauth;
mod oauth_only;
mod openapi;
mod operator;
mod ops;
mod outbox;
mod protocol;
pub mod pulses;
mod replays;
mod replica_edits;
mod report;
mod response_url;
mod sandbox;
mod sandbox_state;
mod schedule;
mod shared_limits;
mod signature;
mod slow_clients;
mod socket_mode;
mod state_checks;
mod walkthrough;
mod wins;
