//! The domain model: pure rules with no I/O, used by `config` (to validate files) and by the
//! services (`scheduler`, `pulse`). Nothing here imports another module of this crate.
//!
//! - `cadence`: cron expressions, working days, `every_weeks`, holidays and the DST rule
//!   (docs/cadence.md).

pub mod cadence;
