//! The evidence sponsors read: the weekly digest (numbers computed in SQL, the anonymity rules
//! applied to each, the Block Kit message), its trend chart and the ROI report.
//!
//! Sits between `slack` and `pulse`: it uses the store and the typed Slack protocol, and the
//! services above it (`/pulse digest`, the scheduler, the admin API) use it.

pub mod chart;
pub mod report;
