//! Slack's rate limits: per-method tiers per token, and chat.postMessage's special limit
//! (about one message per second per channel with a short burst, plus an optional
//! workspace-wide ceiling). Tiers come from `slack_facts::rate_tiers`, the table the bot uses too.
//!
//! Token buckets: a tier of N per minute holds N tokens and refills N/60 per second, so a
//! burst of N passes and then calls are spaced out, which is how Slack's "N+ per minute"
//! behaves in practice. The limiter takes `now` so tests can drive it without sleeping.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The limits the emulator enforces. Every bucket is per token: two apps (or the bot and an
/// outside client with its own token) never share a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub tier1_per_minute: u32,
    pub tier2_per_minute: u32,
    pub tier3_per_minute: u32,
    pub tier4_per_minute: u32,
    /// chat.postMessage per channel per token; Slack allows about 1/s.
    pub posts_per_second_per_channel: Option<f64>,
    /// How many posts to one channel may go out back to back before the 1/s pace applies.
    pub posts_burst_per_channel: u32,
    /// chat.postMessage across all channels of a workspace (token).
    pub posts_per_minute_per_workspace: Option<u32>,
    pub enabled: bool,
    /// Calls per minute for one method, instead of its tier's (e.g. `"users.info": 5`).
    pub per_method: BTreeMap<String, u32>,
    /// chat.postMessage per second to one channel (`C…` or `D…`), instead of
    /// `posts_per_second_per_channel`.
    pub per_channel: BTreeMap<String, f64>,
}

impl Default for RateLimits {
    /// Slack's documented tiers: 1, 20, 50 and 100 per minute; 1 post per second per channel.
    fn default() -> Self {
        Self {
            tier1_per_minute: 1,
            tier2_per_minute: 20,
            tier3_per_minute: 50,
            tier4_per_minute: 100,
            posts_per_second_per_channel: Some(1.0),
            posts_burst_per_channel: 3,
            posts_per_minute_per_workspace: None,
            enabled: true,
            per_method: BTreeMap::new(),
            per_channel: BTreeMap::new(),
        }
    }
}

impl RateLimits {
    /// No limits at all, for tests that are not about rate limiting.
    pub fn unlimited() -> Self {
        Self {
            enabled: false,
            posts_per_second_per_channel: None,
            posts_per_minute_per_workspace: None,
            ..Self::default()
        }
    }
}

pub use slack_facts::rate_tiers::{tier_of, Tier};

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            capacity,
            per_second,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
    }

    /// `Err(wait)` when no token is available, without taking one.
    fn check(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else if self.per_second <= 0.0 {
            Err(Duration::from_secs(60))
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

/// The state of every bucket; owned by the emulator's world.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
        }
    }

    fn bucket(&mut self, key: String, per_minute: f64, capacity: f64, now: Instant) -> &mut Bucket {
        self.buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(capacity, per_minute / 60.0, now))
    }

    /// Counts one call of `method` by `token` (to `channel`, for chat.postMessage).
    /// `Err(wait)` means answer 429 with `Retry-After` of at least `wait`; nothing is counted then.
    pub fn check(
        &mut self,
        token: &str,
        method: &str,
        channel: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        if !self.limits.enabled {
            return Ok(());
        }
        let l = self.limits.clone();
        let mut keys: Vec<(String, f64, f64)> = Vec::new();
        if let Some(&n) = l.per_method.get(method) {
            let n = f64::from(n);
            keys.push((format!("method:{token}:{method}"), n, n.max(1.0)));
        }
        match tier_of(method) {
            _ if l.per_method.contains_key(method) => {}
            Tier::PostMessage => {
                let channel_rate = channel.and_then(|c| l.per_channel.get(c).copied());
                if let (Some(rate), Some(channel)) =
                    (channel_rate.or(l.posts_per_second_per_channel), channel)
                {
                    let burst = f64::from(l.posts_burst_per_channel.max(1));
                    keys.push((format!("post:{token}:{channel}"), rate * 60.0, burst));
                }
                if let Some(per_minute) = l.posts_per_minute_per_workspace {
                    let n = f64::from(per_minute);
                    keys.push((format!("workspace:{token}"), n, n));
                }
            }
            tier => {
                let n = f64::from(match tier {
                    Tier::T1 => l.tier1_per_minute,
                    Tier::T2 => l.tier2_per_minute,
                    Tier::T3 => l.tier3_per_minute,
                    _ => l.tier4_per_minute,
                });
                keys.push((format!("method:{token}:{method}"), n, n.max(1.0)));
            }
        }
        // Check every bucket before taking from any, so a refused call costs nothing.
        let mut wait = Duration::ZERO;
        for (key, per_minute, capacity) in &keys {
            if let Err(w) = self
                .bucket(key.clone(), *per_minute, *capacity, now)
                .check(now)
            {
                wait = wait.max(w);
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, per_minute, capacity) in keys {
            self.bucket(key, per_minute, capacity, now).take();
        }
        Ok(())
    }
}

/// `Retry-After` in whole seconds, never less than 1 (Slack never says 0).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn tier2_allows_twenty_then_one_every_three_seconds() {
        let mut l = Limiter::new(RateLimits::default());
        let t0 = Instant::now();
        for _ in 0..20 {
            assert!(l.check("t", "users.list", None, t0).is_ok());
        }
        let wait = l.check("t", "users.list", None, t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 3);
        assert!(l.check("t", "users.list", None, t0 + secs(2.9)).is_err());
        assert!(l.check("t", "users.list", None, t0 + secs(3.0)).is_ok());
    }

    #[test]
    fn limits_are_per_token_and_per_method() {
        let mut l = Limiter::new(RateLimits::default());
        let t0 = Instant::now();
        for _ in 0..20 {
            l.check("a", "users.list", None, t0).unwrap();
        }
        assert!(l.check("a", "users.list", None, t0).is_err());
        assert!(l.check("b", "users.list", None, t0).is_ok());
        assert!(l.check("a", "users.info", None, t0).is_ok());
    }

    #[test]
    fn per_method_and_per_channel_limits_override_the_defaults() {
        let mut limits = RateLimits::default();
        limits.per_method.insert("users.info".into(), 2);
        limits.per_channel.insert("C1".into(), 0.5);
        limits.posts_burst_per_channel = 1;
        let mut l = Limiter::new(limits);
        let t0 = Instant::now();
        l.check("t", "users.info", None, t0).unwrap();
        l.check("t", "users.info", None, t0).unwrap();
        let wait = l.check("t", "users.info", None, t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 30);
        l.check("t", "chat.postMessage", Some("C1"), t0).unwrap();
        let wait = l
            .check("t", "chat.postMessage", Some("C1"), t0)
            .unwrap_err();
        assert_eq!(retry_after_secs(wait), 2);
        // Another token has its own buckets.
        assert!(l.check("other", "users.info", None, t0).is_ok());
    }

    #[test]
    fn tier1_waits_a_minute() {
        let mut l = Limiter::new(RateLimits::default());
        let t0 = Instant::now();
        l.check("t", "apps.connections.open", None, t0).unwrap();
        let wait = l.check("t", "apps.connections.open", None, t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 60);
    }

    #[test]
    fn posts_are_paced_per_channel_after_a_short_burst() {
        let mut l = Limiter::new(RateLimits::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check("t", "chat.postMessage", Some("D1"), t0).unwrap();
        }
        let wait = l
            .check("t", "chat.postMessage", Some("D1"), t0)
            .unwrap_err();
        assert_eq!(retry_after_secs(wait), 1);
        // Another channel has its own allowance.
        assert!(l.check("t", "chat.postMessage", Some("D2"), t0).is_ok());
        assert!(l
            .check("t", "chat.postMessage", Some("D1"), t0 + secs(1.0))
            .is_ok());
    }

    #[test]
    fn the_workspace_ceiling_applies_across_channels() {
        let limits = RateLimits {
            posts_per_minute_per_workspace: Some(2),
            ..RateLimits::default()
        };
        let mut l = Limiter::new(limits);
        let t0 = Instant::now();
        l.check("t", "chat.postMessage", Some("D1"), t0).unwrap();
        l.check("t", "chat.postMessage", Some("D2"), t0).unwrap();
        let wait = l
            .check("t", "chat.postMessage", Some("D3"), t0)
            .unwrap_err();
        assert_eq!(retry_after_secs(wait), 30);
    }

    #[test]
    fn a_refused_call_costs_nothing_and_disabled_limits_never_refuse() {
        let limits = RateLimits {
            posts_per_minute_per_workspace: Some(1),
            posts_burst_per_channel: 1,
            ..RateLimits::default()
        };
        let mut l = Limiter::new(limits);
        let t0 = Instant::now();
        l.check("t", "chat.postMessage", Some("D1"), t0).unwrap();
        // D2's channel bucket must not be drained by the workspace refusal.
        assert!(l.check("t", "chat.postMessage", Some("D2"), t0).is_err());
        assert!(l
            .check("t", "chat.postMessage", Some("D2"), t0 + secs(60.0))
            .is_ok());

        let mut off = Limiter::new(RateLimits::unlimited());
        for _ in 0..1000 {
            assert!(off.check("t", "users.list", None, t0).is_ok());
        }
    }
}
