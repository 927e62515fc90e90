//! The cadence rules moved to [`crate::domain::cadence`] (pure, shared with `config`); this
//! re-export keeps the old path working for the scheduler and the pulse services.

pub use crate::domain::cadence::*;
