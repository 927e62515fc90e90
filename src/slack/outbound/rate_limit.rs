//! Slack's rate limits, applied before a request leaves: per method tier, about one post per
//! second per channel, and a workspace-wide post ceiling. Time comes from the caller (the
//! injected clock), and a denial says *when* to come back instead of sleeping, so the outbox
//! reschedules the row and tests can move time by hand.
//!
//! The client owns one limiter per workspace token and every call goes through it (see
//! `client.rs`): the outbox workers and the inline calls draw from the same buckets, and a 429
//! from Slack pauses the method for all of them.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::storage::rate_budgets::Budget;
use slack_facts::rate_tiers::{tier_of, Tier};

/// Requests per minute a tier allows (the one table in `slack_facts::rate_tiers`, which the
/// emulator enforces too). chat.postMessage is limited per channel and per workspace instead,
/// and the special methods are not limited here.
pub fn tier_limit_per_minute(tier: Tier) -> f64 {
    tier.per_minute().map(f64::from).unwrap_or(f64::INFINITY)
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

    /// Adds what accrued since the last refill. The elapsed time is exact: truncated to whole
    /// milliseconds, the fraction lost at each call added up to a tenth of the rate when the
    /// workers asked every few milliseconds (fan-out at 100 posts/s reached 91 %).
    fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.at).to_std().map_or(0.0, |d| d.as_secs_f64());
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    pub posts_per_minute: u32,
    pub posts_per_second_per_channel: f64,
}

impl Default for RateLimitConfig {
    /// The service's defaults (`slack.max_posts_per_minute`, one post a second per channel).
    fn default() -> Self {
        Self {
            posts_per_minute: 600,
            posts_per_second_per_channel: slack_facts::rate_tiers::POSTS_PER_SECOND_PER_CHANNEL,
        }
    }
}

/// The local limiter held a call back: nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// When a token will be there (or Slack's pause ends).
    pub ready_at: DateTime<Utc>,
    /// How long that is from the limiter's own now, which never runs backwards: a caller that
    /// waits sleeps this long, then asks again at `ready_at`.
    pub wait: Duration,
}

/// All limits of one workspace, shared by everything in the process that calls Slack with its
/// token.
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
    /// The latest instant any caller asked at. A caller that slept until its `ready_at` asks
    /// at that instant even when the injected clock stands still (a test's manual clock);
    /// later callers are measured from there, so waits do not pile up.
    latest: Option<DateTime<Utc>>,
}

/// A method's own bucket: a burst of a tenth of a minute's budget, refilled at the tier's rate.
fn method_bucket(tier: Tier, now: DateTime<Utc>) -> Bucket {
    let per_minute = tier_limit_per_minute(tier);
    if per_minute.is_finite() {
        Bucket::new((per_minute / 10.0).max(1.0), per_minute / 60.0, now)
    } else {
        Bucket::new(1e9, 1e9, now)
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes a permit for one call of `method` (of `tier`), or says when to come back. All
    /// buckets involved must be ready before any token is taken, so a denial costs nothing.
    pub fn try_acquire(
        &self,
        method: &str,
        tier: Tier,
        channel: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Denial> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = state.latest.map_or(now, |l| l.max(now));
        state.latest = Some(now);
        let State {
            methods,
            channels,
            workspace_posts,
            ..
        } = &mut *state;
        let method_bucket = methods
            .entry(method.to_string())
            .or_insert_with(|| method_bucket(tier, now));
        let mut ready = method_bucket.ready_at(now);

        let is_post = tier == Tier::PostMessage;
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
            return Err(Denial {
                ready_at: ready,
                wait: ready - now,
            });
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

    /// Methods a call of which would be held back at `now` (their own bucket, or for posts the
    /// workspace ceiling, is empty or paused). The outbox does not claim rows of these.
    pub fn blocked_methods(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = state.latest.map_or(now, |l| l.max(now));
        let mut blocked: Vec<String> = state
            .methods
            .iter_mut()
            .filter_map(|(m, b)| (b.ready_at(now) > now).then(|| m.clone()))
            .collect();
        if let Some(ws) = state.workspace_posts.as_mut() {
            if ws.ready_at(now) > now && !blocked.iter().any(|m| m == "chat.postMessage") {
                blocked.push("chat.postMessage".into());
            }
        }
        blocked.sort();
        blocked
    }

    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Slack said 429: nobody calls `method` again before `until`.
    pub fn pause(&self, method: &str, tier: Tier, until: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = state
            .methods
            .entry(method.to_string())
            .or_insert_with(|| method_bucket(tier, until));
        bucket.blocked_until = Some(bucket.blocked_until.map_or(until, |u| u.max(until)));
    }
}

/// The budgets shared by all replicas ([`crate::storage::rate_budgets`]) that one call of
/// `method` (to `channel`) draws from: the method's tier, and for a post the workspace's post
/// ceiling and the channel's pace. The same rates and bursts as the local limiter.
pub fn shared_budgets(config: RateLimitConfig, method: &str, channel: Option<&str>) -> Vec<Budget> {
    let tier = tier_of(method);
    let mut budgets = Vec::new();
    let per_minute = tier_limit_per_minute(tier);
    if per_minute.is_finite() && per_minute > 0.0 {
        budgets.push(Budget {
            key: format!("m:{method}"),
            interval_ms: (60_000.0 / per_minute).ceil() as i64,
            burst: (per_minute / 10.0).max(1.0) as i64,
        });
    }
    if tier == Tier::PostMessage {
        let per_minute = f64::from(config.posts_per_minute.max(1));
        budgets.push(Budget {
            key: "posts".into(),
            interval_ms: (60_000.0 / per_minute).ceil() as i64,
            burst: (per_minute / 60.0).max(1.0) as i64,
        });
        if let Some(channel) = channel {
            budgets.push(Budget {
                key: format!("ch:{channel}"),
                interval_ms: (1000.0 / config.posts_per_second_per_channel.max(0.001)).ceil()
                    as i64,
                burst: 1,
            });
        }
    }
    budgets
}

/// A budget key of workspace `team_id`: the default installation's keys as they are
/// (`m:…`, `posts`, `ch:…`), an OAuth installation's prefixed `t:<team>:` (each workspace has
/// its own limits at Slack). The outbox claim builds the same keys in SQL.
pub fn team_budget_key(team_id: &str, key: &str) -> String {
    if team_id.is_empty() {
        key.to_string()
    } else {
        format!("t:{team_id}:{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const POST: Tier = Tier::PostMessage;

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
    fn asking_often_does_not_lose_what_accrues_between_milliseconds() {
        // 100 posts a second, asked every 0.6 ms for 10 s: 1,000 posts, not fewer.
        let l = RateLimiter::new(RateLimitConfig {
            posts_per_minute: 6000,
            posts_per_second_per_channel: 1.0,
        });
        let start = t0();
        let mut sent = 0;
        let mut now = start;
        while now < start + Duration::seconds(10) {
            if l.try_acquire("chat.postMessage", POST, None, now).is_ok() {
                sent += 1;
            }
            now += Duration::microseconds(600);
        }
        // The burst (one second's worth) plus ten seconds of refill, give or take one.
        assert!((1099..=1101).contains(&sent), "{sent} posts");
    }

    #[test]
    fn one_post_per_second_per_channel() {
        let l = limiter();
        let now = t0();
        assert!(l
            .try_acquire("chat.postMessage", POST, Some("U1"), now)
            .is_ok());
        let back = l
            .try_acquire("chat.postMessage", POST, Some("U1"), now)
            .unwrap_err()
            .ready_at;
        assert_eq!(back, now + Duration::seconds(1));
        // Another channel is not held up.
        assert!(l
            .try_acquire("chat.postMessage", POST, Some("U2"), now)
            .is_ok());
        assert!(l
            .try_acquire("chat.postMessage", POST, Some("U1"), back)
            .is_ok());
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
            match l.try_acquire("chat.postMessage", POST, Some(&format!("U{i}")), now) {
                Ok(()) => sent += 1,
                Err(denial) => now = denial.ready_at,
            }
        }
        assert!((60..=61).contains(&sent), "sent {sent}");
    }

    #[test]
    fn tiers_agree_with_slack() {
        let per_minute = |m: &str| tier_limit_per_minute(tier_of(m));
        assert_eq!(per_minute("usergroups.users.list"), 20.0);
        assert_eq!(per_minute("users.list"), 20.0);
        assert_eq!(per_minute("conversations.history"), 50.0);
        assert_eq!(per_minute("conversations.replies"), 50.0);
        assert_eq!(per_minute("users.info"), 100.0);
        assert_eq!(per_minute("views.open"), 100.0);
    }

    #[test]
    fn a_429_pauses_the_method() {
        let l = limiter();
        let now = t0();
        l.pause("chat.update", Tier::T3, now + Duration::seconds(2));
        assert_eq!(
            l.try_acquire("chat.update", Tier::T3, None, now)
                .unwrap_err()
                .ready_at,
            now + Duration::seconds(2)
        );
        assert!(l
            .try_acquire("chat.update", Tier::T3, None, now + Duration::seconds(2))
            .is_ok());
    }

    #[test]
    fn a_caller_that_waited_is_measured_from_where_it_woke() {
        // users.info: a burst of 10, then one every 0.6 s. The clock stands still (a manual
        // clock); each caller sleeps its `wait` and asks again at `ready_at`.
        let l = limiter();
        let t = t0();
        for _ in 0..10 {
            assert!(l.try_acquire("users.info", Tier::T4, None, t).is_ok());
        }
        let mut waits = Vec::new();
        for _ in 0..3 {
            let denial = l.try_acquire("users.info", Tier::T4, None, t).unwrap_err();
            waits.push(denial.wait.num_milliseconds());
            assert!(l
                .try_acquire("users.info", Tier::T4, None, denial.ready_at)
                .is_ok());
        }
        // The same pause each time, not 0.6 s, 1.2 s, 1.8 s…
        assert_eq!(waits, vec![600, 600, 600]);
    }

    #[test]
    fn a_method_without_tokens_is_named_as_blocked() {
        let l = RateLimiter::new(RateLimitConfig {
            posts_per_minute: 60,
            posts_per_second_per_channel: 1.0,
        });
        let now = t0();
        assert!(l.blocked_methods(now).is_empty());
        for _ in 0..5 {
            assert!(l.try_acquire("chat.update", Tier::T3, None, now).is_ok());
        }
        assert_eq!(l.blocked_methods(now), vec!["chat.update".to_string()]);
        // The workspace ceiling of 60 a minute has a burst of one.
        assert!(l
            .try_acquire("chat.postMessage", POST, Some("U1"), now)
            .is_ok());
        assert_eq!(
            l.blocked_methods(now),
            vec!["chat.postMessage".to_string(), "chat.update".to_string()]
        );
        assert!(l.blocked_methods(now + Duration::seconds(2)).is_empty());
    }

    #[test]
    fn shared_budgets_match_the_local_limits() {
        let config = RateLimitConfig {
            posts_per_minute: 600,
            posts_per_second_per_channel: 1.0,
        };
        let post = shared_budgets(config, "chat.postMessage", Some("D1"));
        assert_eq!(
            post,
            vec![
                Budget {
                    key: "posts".into(),
                    interval_ms: 100,
                    burst: 10
                },
                Budget {
                    key: "ch:D1".into(),
                    interval_ms: 1000,
                    burst: 1
                },
            ]
        );
        let update = shared_budgets(config, "chat.update", None);
        assert_eq!(update[0].key, "m:chat.update");
        assert_eq!(update[0].interval_ms, 1200);
        assert_eq!(update[0].burst, 5);
    }
}
