//! Web API rate limits: every method belongs to a tier, and a tier allows about N calls per
//! minute per workspace and app. `chat.postMessage` is special: about one message per second
//! per channel, with short bursts, instead of a per-method budget. The tiers below are those of
//! Slack's `rate_limit_tiers.json` for the methods pulseloop and its emulator use.

/// The rate-limit class of a Web API method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// 1+ per minute.
    T1,
    /// 20+ per minute.
    T2,
    /// 50+ per minute.
    T3,
    /// 100+ per minute.
    T4,
    /// `chat.postMessage`: about 1 per second per channel, plus a workspace ceiling.
    PostMessage,
    /// `auth.test` and a few others: limited generously, at Slack's discretion.
    Special,
}

impl Tier {
    /// Calls per minute a tier allows (Slack's "N+ per minute"); `None` for the special
    /// classes, which are not limited per method.
    pub fn per_minute(self) -> Option<u32> {
        match self {
            Tier::T1 => Some(1),
            Tier::T2 => Some(20),
            Tier::T3 => Some(50),
            Tier::T4 => Some(100),
            Tier::PostMessage | Tier::Special => None,
        }
    }
}

/// One table for every method either side uses. A method missing here is treated as Tier 3,
/// the middle ground, by [`tier_of`].
pub const METHOD_TIERS: &[(&str, Tier)] = &[
    ("apps.connections.open", Tier::T1),
    ("auth.test", Tier::Special),
    ("chat.delete", Tier::T3),
    ("chat.postEphemeral", Tier::T4),
    ("chat.postMessage", Tier::PostMessage),
    ("chat.update", Tier::T3),
    ("conversations.history", Tier::T3),
    ("conversations.info", Tier::T3),
    ("conversations.list", Tier::T2),
    ("conversations.open", Tier::T3),
    ("conversations.replies", Tier::T3),
    ("files.completeUploadExternal", Tier::T4),
    ("files.getUploadURLExternal", Tier::T4),
    ("oauth.v2.access", Tier::T4),
    ("team.info", Tier::T3),
    ("usergroups.list", Tier::T2),
    ("usergroups.users.list", Tier::T2),
    ("users.info", Tier::T4),
    ("users.list", Tier::T2),
    ("views.open", Tier::T4),
    ("views.publish", Tier::T4),
    ("views.push", Tier::T4),
    ("views.update", Tier::T4),
];

/// The tier of a Web API method (Tier 3 when the table does not know it). A `const fn`, so a
/// client can declare each method's tier once, at compile time, from this one table.
pub const fn tier_of(method: &str) -> Tier {
    let mut i = 0;
    while i < METHOD_TIERS.len() {
        let (name, tier) = METHOD_TIERS[i];
        if same(name, method) {
            return tier;
        }
        i += 1;
    }
    Tier::T3
}

/// `a == b`, usable in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `chat.postMessage` to one channel: about one per second.
pub const POSTS_PER_SECOND_PER_CHANNEL: f64 = 1.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_slacks_published_tiers() {
        assert_eq!(tier_of("usergroups.users.list"), Tier::T2);
        assert_eq!(tier_of("users.list"), Tier::T2);
        assert_eq!(tier_of("users.info"), Tier::T4);
        assert_eq!(tier_of("chat.update"), Tier::T3);
        assert_eq!(tier_of("conversations.history"), Tier::T3);
        assert_eq!(tier_of("chat.postMessage"), Tier::PostMessage);
        assert_eq!(tier_of("apps.connections.open"), Tier::T1);
        assert_eq!(tier_of("no.such.method"), Tier::T3);
        assert_eq!(Tier::T2.per_minute(), Some(20));
    }

    #[test]
    fn the_tier_is_known_at_compile_time() {
        const VIEWS_OPEN: Tier = tier_of("views.open");
        const UNKNOWN: Tier = tier_of("views.ope");
        assert_eq!(VIEWS_OPEN, Tier::T4);
        assert_eq!(UNKNOWN, Tier::T3);
    }

    #[test]
    fn each_method_is_listed_once() {
        let mut names: Vec<_> = METHOD_TIERS.iter().map(|(m, _)| *m).collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before);
    }
}
