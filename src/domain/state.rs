//! The states the store keeps as text, as enums: each has `as_str`, `FromStr`, serde in the
//! same spelling, and sqlx `Type`/`Encode`/`Decode` as text on both databases (so a value is
//! bound and read as the enum, never as a loose string). The database refuses any other value
//! (CHECK constraints, migration 20261201000005).

/// A stored text that names no known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Defines a text-stored enum: variants with their stored spelling.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident: $kind:literal { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::state::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::domain::state::UnknownValue {
                        kind: $kind,
                        value: other.to_string(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Where a delivery (one round to one member) stands.
    DeliveryState: "delivery state" {
        /// Planned; its DM goes out at `scheduled_at`.
        Scheduled = "scheduled",
        /// Its DM is in the outbox.
        Queued = "queued",
        /// Its DM was posted.
        Sent = "sent",
        Answered = "answered",
        /// The window ended unanswered.
        Expired = "expired",
        /// The DM could not be posted.
        Failed = "failed",
        /// Never sent (opted out, deleted in Slack…); the reason is kept.
        Skipped = "skipped",
        /// Answered or expired in a sealed anonymous round: which of the two is forgotten.
        Closed = "closed",
    }
}

impl DeliveryState {
    /// Still open to answers (the window and the round are judged apart).
    pub fn is_answerable(self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::Queued | Self::Sent | Self::Answered
        )
    }
}

text_enum! {
    /// A member's standing in a program.
    MemberState: "member state" {
        Active = "active",
        /// Paused by the member, until `paused_until` if set.
        Paused = "paused",
        OptedOut = "opted_out",
        /// Removed from the program's file; kept so past answers stay in the aggregates.
        Deactivated = "deactivated",
    }
}

text_enum! {
    /// How the author of a win agreed it may be shown.
    Consent: "consent" {
        Named = "named",
        Anonymous = "anonymous",
        Private = "private",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_text() {
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in MemberState::ALL {
            assert_eq!(s.as_str().parse::<MemberState>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in Consent::ALL {
            assert_eq!(s.as_str().parse::<Consent>(), Ok(*s));
        }
        assert_eq!(
            "lost".parse::<DeliveryState>().unwrap_err().to_string(),
            "unknown delivery state: \"lost\""
        );
    }
}
