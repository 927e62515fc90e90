//! Injected failures: the emulator can answer a matching call with an HTTP error, a Slack
//! error code, a 429, a delay, or by dropping the TCP connection without any response (before
//! or after carrying the call out), so the
//! bot's retry and backoff paths can be tested against the real transport.

use std::time::Duration;

/// What happens to a call hit by a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// That HTTP status (500, 503, …) with a small JSON body, as Slack's edge sends on outages.
    Http(u16),
    /// HTTP 200 with `{"ok": false, "error": <code>}`.
    Error(String),
    /// HTTP 429 with `Retry-After` and `{"ok": false, "error": "ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// Wait this long, then answer normally (limits and the method still apply).
    Delay(Duration),
    /// Close the connection without writing a response: the client sees a connection error.
    /// The call is not carried out.
    DropConnection,
    /// Carry the call out (a post is stored and visible in the conversation), then close the
    /// connection without answering: the client cannot tell whether it worked.
    PostThenDrop,
}

/// A fault rule. `method` and `target` narrow it down; `None` matches anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub method: Option<String>,
    /// A user or channel id found in the call's `channel`, `user`, `users` or `user_id`.
    pub target: Option<String>,
    pub kind: FaultKind,
    /// How many calls it hits; `None` means until [`super::Emulator::clear_faults`].
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on every call of `method`, until cleared.
    pub fn on(method: &str, kind: FaultKind) -> Self {
        Self {
            method: Some(method.to_string()),
            target: None,
            kind,
            times: None,
        }
    }

    /// Only calls about this user or channel id.
    pub fn for_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_string());
        self
    }

    /// Only the next `n` matching calls.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// The active rules, first match wins.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Fault>,
}

impl Faults {
    pub fn push(&mut self, fault: Fault) {
        if fault.times != Some(0) {
            self.rules.push(fault);
        }
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this call, if any, consuming one of its `times`.
    pub fn take(&mut self, method: &str, targets: &[String]) -> Option<FaultKind> {
        let index = self.rules.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m == method)
                && f.target
                    .as_deref()
                    .is_none_or(|t| targets.iter().any(|x| x == t))
        })?;
        let kind = self.rules[index].kind.clone();
        if let Some(n) = self.rules[index].times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rules.remove(index);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_consumed_times_and_then_gone() {
        let mut f = Faults::default();
        f.push(Fault::on("chat.postMessage", FaultKind::Http(500)).times(2));
        assert_eq!(f.take("chat.postMessage", &[]), Some(FaultKind::Http(500)));
        assert_eq!(f.take("users.info", &[]), None);
        assert_eq!(f.take("chat.postMessage", &[]), Some(FaultKind::Http(500)));
        assert_eq!(f.take("chat.postMessage", &[]), None);
    }

    #[test]
    fn targets_narrow_and_none_means_forever() {
        let mut f = Faults::default();
        f.push(Fault::on("chat.postMessage", FaultKind::DropConnection).for_target("U1"));
        assert_eq!(f.take("chat.postMessage", &["U2".into()]), None);
        for _ in 0..3 {
            assert_eq!(
                f.take("chat.postMessage", &["U1".into()]),
                Some(FaultKind::DropConnection)
            );
        }
        f.clear();
        assert_eq!(f.take("chat.postMessage", &["U1".into()]), None);
    }
}
