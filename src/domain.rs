//! The domain model: pure rules with no I/O, used by `config` (to validate files), by
//! `storage` and by the services (`pulse`, `scheduler`). Nothing here imports another module
//! of this crate.
//!
//! - `cadence`: cron expressions, working days, `every_weeks`, holidays and the DST rule
//!   (docs/cadence.md);
//! - `program`: programs, surveys, questions, roles and anonymity modes, as validated from
//!   `config/programs/*.toml`, and the anonymity floor;
//! - `planning`: which member gets which survey when, working hours and out-of-office.
//! - `ids`: row ids (delivery, round, member, program) as types;
//! - `state`: the states the store keeps as text (delivery, member, consent), as enums.
//! - `stats`: summaries from SQL sums, Welch's 95 % interval, eNPS (the digest's statistics).

pub mod cadence;
pub mod ids;
pub mod planning;
pub mod program;
pub mod state;
pub mod stats;
