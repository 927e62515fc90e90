//! The evidence sponsors read: the weekly digest (numbers computed in SQL, the anonymity rules
//! applied to each, the Block Kit message), its trend chart and the ROI report.
//!
//! Sits between `slack` and `pulse`: it uses the store and the typed Slack protocol, and the
//! services above it (`/pulse digest`, the scheduler, the admin API) use it.
//!
//! Tour (docs/digest.md):
//! - `period`: digest periods from the `[digest] cadence` in the program's zone;
//! - `numbers`: the rules applied to what `storage::digest` computed, into the preview shape;
//! - `message`: Block Kit and the text fallback, within Slack's limits;
//! - `service`: build, and send once per channel and period through the outbox.
//! - `bench`: the synthetic history and the timing of the benchmark (README "Performance").

pub mod bench;
pub mod chart;
pub mod message;
pub mod numbers;
pub mod period;
pub mod report;
pub mod service;

pub use numbers::{Digest, TrendSeries};
pub use service::{DigestError, SendOutcome};
