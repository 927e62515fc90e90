//! Slack's rate limits, applied before a request leaves: per method tier, about one post per
//! second per channel, and a workspace-wide post ceiling. Time comes from the caller (the
//! injected clock), and a denial says *when* to come back instead of sleeping, so the outbox
//! reschedules the row and tests can move time by hand.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

use slack_facts::rate_tiers::tier_of;

/// Requests per minute for a method, from Slack's published tiers (the one table in
/// `slack_facts::rate_tiers`, which the emulator enforces too). chat.postMessage is limited per
/// channel and per workspace instead, and the special methods are not limited here.
pub fn method_limit_per_minute(method: &str) -> f64 {
    tier_of(method)
        .per_minute()
        .map(f64::from)
        .unwrap_or(f64::INFINITY)
}

/// A token bucket whose refill is computed from timestamps, not timers.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: DateTime<Utc>,
    blocked_until: Option<DateTime<Utc>>,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64, now: DateTime<Utc>) -> Self {
        Self {
            capacity,
            per_second,
            tokens: capacity,
            at: now,
            blocked_until: None,
        }
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.at).num_milliseconds().max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if now > self.at {
            self.at = now;
        }
    }

    /// When one token will be available (now if it is).
    fn ready_at(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.refill(now);
        let mut ready = now;
        if let Some(until) = self.blocked_until {
            if until > ready {
                ready = until;
            }
        }
        if self.tokens < 1.0 {
            let wait_ms = ((1.0 - self.tokens) / self.per_second * 1000.0).ceil() as i64;
            let by_tokens = now + Duration::milliseconds(wait_ms.max(1));
            if by_tokens > ready {
                ready = by_tokens;
            }
        }
        ready
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub posts_per_minute: u32,
    pub posts_per_second_per_channel: f64,
}

/// All limits of one workspace, shared by the workers of a process.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    methods: HashMap<String, Bucket>,
    channels: HashMap<String, Bucket>,
    workspace_posts: Option<Bucket>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes a permit for one call, or says when to come back. All buckets involved must be
    /// ready before any token is taken, so a denial costs nothing.
    pub fn try_acquire(
        &self,
        method: &str,
        channel: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State {
            methods,
            channels,
            workspace_posts,
        } = &mut *state;
        let per_minute = method_limit_per_minute(method);
        let method_bucket = methods.entry(method.to_string()).or_insert_with(|| {
            // Finite tiers allow a burst of a tenth of a minute's budget.
            let rate = if per_minute.is_finite() {
                per_minute / 60.0
            } else {
                1e9
            };
            let burst = if per_minute.is_finite() {
                (per_minute / 10.0).max(1.0)
            } else {
                1e9
            };
            Bucket::new(burst, rate, now)
        });
        let mut ready = method_bucket.ready_at(now);

        let is_post = method == "chat.postMessage";
        let mut channel_bucket = None;
        if is_post {
            let ws = workspace_posts.get_or_insert_with(|| {
                let per_minute = f64::from(self.config.posts_per_minute.max(1));
                Bucket::new((per_minute / 60.0).max(1.0), per_minute / 60.0, now)
            });
            ready = ready.max(ws.ready_at(now));
            if let Some(channel) = channel {
                let rate = self.config.posts_per_second_per_channel;
                let bucket = channels
                    .entry(channel.to_string())
                    .or_insert_with(|| Bucket::new(1.0, rate, now));
                ready = ready.max(bucket.ready_at(now));
                channel_bucket = Some(channel.to_string());
            }
        }
        if ready > now {
            return Err(ready);
        }
        method_bucket.take();
        if is_post {
            if let Some(ws) = workspace_posts.as_mut() {
                ws.take();
            }
            if let Some(key) = channel_bucket {
                if let Some(b) = channels.get_mut(&key) {
                    b.take();
                }
            }
            // Idle full buckets carry no information; keep the map from growing without end.
            if channels.len() > 50_000 {
                channels.retain(|_, b| {
                    b.refill(now);
                    b.tokens < b.capacity
                });
            }
        }
        Ok(())
    }

    /// Slack said 429: nobody calls `method` again before `until`.
    pub fn pause(&self, method: &str, until: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let per_minute = method_limit_per_minute(method);
        let bucket = state
            .methods
            .entry(method.to_string())
            .or_insert_with(|| Bucket::new(1.0, (per_minute / 60.0).min(1e9), until));
        bucket.blocked_until = Some(bucket.blocked_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap()
    }

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            posts_per_minute: 600,
            posts_per_second_per_channel: 1.0,
        })
    }

    #[test]
    fn one_post_per_second_per_channel() {
        let l = limiter();
        let now = t0();
        assert!(l.try_acquire("chat.postMessage", Some("U1"), now).is_ok());
        let back = l
            .try_acquire("chat.postMessage", Some("U1"), now)
            .unwrap_err();
        assert_eq!(back, now + Duration::seconds(1));
        // Another channel is not held up.
        assert!(l.try_acquire("chat.postMessage", Some("U2"), now).is_ok());
        assert!(l.try_acquire("chat.postMessage", Some("U1"), back).is_ok());
    }

    #[test]
    fn workspace_ceiling_holds_over_a_minute() {
        let l = RateLimiter::new(RateLimitConfig {
            posts_per_minute: 60,
            posts_per_second_per_channel: 1.0,
        });
        let mut now = t0();
        let mut sent = 0;
        let end = now + Duration::seconds(60);
        let mut i = 0;
        while now < end {
            i += 1;
            match l.try_acquire("chat.postMessage", Some(&format!("U{i}")), now) {
                Ok(()) => sent += 1,
                Err(at) => now = at,
            }
        }
        assert!((60..=61).contains(&sent), "sent {sent}");
    }

    #[test]
    fn tiers_agree_with_slack() {
        assert_eq!(method_limit_per_minute("usergroups.users.list"), 20.0);
        assert_eq!(method_limit_per_minute("users.list"), 20.0);
        assert_eq!(method_limit_per_minute("conversations.history"), 50.0);
        assert_eq!(method_limit_per_minute("conversations.replies"), 50.0);
        assert_eq!(method_limit_per_minute("users.info"), 100.0);
        assert_eq!(method_limit_per_minute("views.open"), 100.0);
    }

    #[test]
    fn a_429_pauses_the_method() {
        let l = limiter();
        let now = t0();
        l.pause("chat.update", now + Duration::seconds(2));
        assert_eq!(
            l.try_acquire("chat.update", None, now).unwrap_err(),
            now + Duration::seconds(2)
        );
        assert!(l
            .try_acquire("chat.update", None, now + Duration::seconds(2))
            .is_ok());
    }
}
