//! The emulator's rate limits: Slack's tiers per method and token in one-minute windows,
//! chat.postMessage per channel and per workspace. Real time, as Slack's servers use.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub tier1_per_minute: u32,
    pub tier2_per_minute: u32,
    pub tier3_per_minute: u32,
    pub tier4_per_minute: u32,
    /// chat.postMessage per channel (Slack: about one per second, short bursts allowed).
    pub posts_per_second_per_channel: Option<f64>,
    pub posts_per_minute_per_workspace: Option<u32>,
    pub enabled: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            tier1_per_minute: 1,
            tier2_per_minute: 20,
            tier3_per_minute: 50,
            tier4_per_minute: 100,
            posts_per_second_per_channel: Some(1.0),
            posts_per_minute_per_workspace: None,
            enabled: true,
        }
    }
}

impl RateLimits {
    pub fn unlimited() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Slack's tier of a method (rate_limit_tiers.json).
pub fn tier(method: &str) -> u8 {
    match method {
        "apps.connections.open" => 1,
        "users.list" | "conversations.list" => 2,
        "chat.update" | "chat.delete" | "conversations.open" | "usergroups.users.list" => 3,
        "chat.postMessage" | "auth.test" => 0,
        _ => 4,
    }
}

const BURST: f64 = 3.0;

pub struct Limiter {
    limits: RateLimits,
    windows: HashMap<(String, String), VecDeque<Instant>>,
    channels: HashMap<String, (f64, Instant)>,
    workspace: VecDeque<Instant>,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: HashMap::new(),
            channels: HashMap::new(),
            workspace: VecDeque::new(),
        }
    }

    /// `Err(retry_after)` when the call is over a limit; the call is counted when allowed.
    pub fn check(
        &mut self,
        token: &str,
        method: &str,
        channel: Option<&str>,
    ) -> Result<(), Duration> {
        if !self.limits.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let per_minute = match tier(method) {
            1 => Some(self.limits.tier1_per_minute),
            2 => Some(self.limits.tier2_per_minute),
            3 => Some(self.limits.tier3_per_minute),
            4 => Some(self.limits.tier4_per_minute),
            _ => None,
        };
        if let Some(limit) = per_minute {
            let window = self
                .windows
                .entry((token.to_string(), method.to_string()))
                .or_default();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= minute)
            {
                window.pop_front();
            }
            if window.len() as u32 >= limit.max(1) {
                let oldest = window.front().copied().unwrap_or(now);
                return Err(minute.saturating_sub(now.duration_since(oldest)));
            }
            window.push_back(now);
        }
        if method == "chat.postMessage" {
            if let Some(limit) = self.limits.posts_per_minute_per_workspace {
                while self
                    .workspace
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= minute)
                {
                    self.workspace.pop_front();
                }
                if self.workspace.len() as u32 >= limit.max(1) {
                    let oldest = self.workspace.front().copied().unwrap_or(now);
                    return Err(minute.saturating_sub(now.duration_since(oldest)));
                }
            }
            if let (Some(rate), Some(channel)) = (self.limits.posts_per_second_per_channel, channel)
            {
                let (tokens, at) = self
                    .channels
                    .entry(channel.to_string())
                    .or_insert((BURST, now));
                *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(BURST);
                *at = now;
                if *tokens < 1.0 {
                    return Err(Duration::from_secs_f64((1.0 - *tokens) / rate));
                }
                *tokens -= 1.0;
            }
            if self.limits.posts_per_minute_per_workspace.is_some() {
                self.workspace.push_back(now);
            }
        }
        Ok(())
    }
}
