//! Slack's IDs as types, so a channel ID cannot be passed where a user ID is expected
//! (slack-morphism's way). Each is a string newtype: `serde(transparent)` (Slack's JSON is
//! read as is), `Display`, `AsRef<str>`, and with the `sqlx` feature a transparent
//! `sqlx::Type` stored as text.
//!
//! `parse` checks the shape Slack documents: user IDs start with `U` or `W` (Enterprise Grid),
//! channel IDs with `C` (public), `G` (private, older) or `D` (a DM), team IDs with `T`, each
//! followed by upper-case letters and digits; a message `ts` is `digits.digits`. Slack says
//! IDs may grow longer, so no length is fixed. Serde and `From<String>` do not check: what
//! Slack (or the database) hands over is taken as it is.

/// A string that does not have the shape of the ID it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a Slack {kind}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

fn id_shape(s: &str, prefixes: &[char]) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && s.len() > 1
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn ts_shape(s: &str) -> bool {
    matches!(s.split_once('.'), Some((secs, micros))
        if !secs.is_empty() && !micros.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.bytes().all(|b| b.is_ascii_digit()))
}

/// The impls every string newtype of Slack's IDs has (and that a service may give its own
/// text ids): `as_str`, `into_string`, unchecked `From<String>`/`From<&str>`, `AsRef<str>`,
/// `Borrow<str>`, `Display` and comparison with `str`. The struct is `$name(String)`.
#[macro_export]
macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            /// Unchecked: for values taken as they were handed over (by Slack, the database).
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            /// Unchecked: for values taken as they were handed over (by Slack, the database).
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

macro_rules! slack_id {
    ($(#[$m:meta])* $name:ident, $kind:literal, $shape:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(String);

        impl $name {
            /// Checks Slack's documented shape.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                let shape: fn(&str) -> bool = $shape;
                if shape(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidId { kind: $kind, value: s })
                }
            }
        }

        $crate::text_newtype!($name);

        impl ::std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }
    };
}

slack_id!(
    /// A user (`U…`, or `W…` on Enterprise Grid).
    UserId,
    "user ID",
    |s| id_shape(s, &['U', 'W'])
);
slack_id!(
    /// A conversation: public channel `C…`, private channel `G…`, DM `D…`.
    ChannelId,
    "channel ID",
    |s| id_shape(s, &['C', 'D', 'G'])
);
slack_id!(
    /// A workspace (`T…`).
    TeamId,
    "team ID",
    |s| id_shape(s, &['T'])
);
slack_id!(
    /// A message's timestamp, its ID within a conversation (`1712345678.000100`).
    MessageTs,
    "message ts",
    ts_shape
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_slack_documents_are_accepted() {
        assert!(UserId::parse("U024BE7LH").is_ok());
        assert!(UserId::parse("W012A3CDE").is_ok());
        assert!(ChannelId::parse("C012AB3CD").is_ok());
        assert!(ChannelId::parse("D024BE91L").is_ok());
        assert!(ChannelId::parse("G0PJ1DEH4").is_ok());
        assert!(TeamId::parse("T12345").is_ok());
        assert!(MessageTs::parse("1712345678.000100").is_ok());
    }

    #[test]
    fn other_shapes_are_refused_naming_the_kind() {
        assert_eq!(
            ChannelId::parse("U024BE7LH").unwrap_err().to_string(),
            "\"U024BE7LH\" is not a Slack channel ID"
        );
        for bad in ["", "U", "u024", "U02 4", "T1"] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
        assert!(TeamId::parse("C123").is_err());
        for bad in ["", "1712345678", ".1", "1.", "1.2.3", "a.b"] {
            assert!(MessageTs::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_is_transparent() {
        let u: UserId = serde_json::from_str("\"U1\"").unwrap();
        assert_eq!(u.as_str(), "U1");
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"U1\"");
        assert_eq!(u.to_string(), "U1");
    }
}
