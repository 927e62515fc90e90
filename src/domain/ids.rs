//! Row IDs as types, so a round id cannot be passed where a delivery id is expected (the way
//! `slack_facts::ids` types Slack's IDs). Each is transparent to serde and to sqlx (stored as
//! BIGINT, or text for [`ProgramId`]), has `Display`, and `FromStr` where an id comes back
//! as text (a block id, a URL path). The inner value is public: a SQL call site or a test may
//! reach it with `.0`.

use std::fmt;

/// Text that is not a row id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind}")]
pub struct InvalidRowId {
    pub kind: &'static str,
    pub value: String,
}

/// Defines an integer row id. `FromStr` takes plain digits only ("+4" or " 4" would parse as
/// a number but would not round-trip).
macro_rules! row_id {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidRowId;
            fn from_str(s: &str) -> Result<Self, InvalidRowId> {
                let invalid = || InvalidRowId { kind: $kind, value: s.to_string() };
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                s.parse().map($name).map_err(|_| invalid())
            }
        }
    };
}

row_id!(
    /// A delivery: one round sent to one member.
    DeliveryId,
    "delivery id"
);
row_id!(
    /// A round: one firing of a survey for one period.
    RoundId,
    "round id"
);
row_id!(
    /// A membership: one Slack user in one program.
    MemberId,
    "member id"
);

/// Defines a text row id: the id a program has in its file (the common string-newtype impls
/// are `slack_facts::text_newtype!`, which Slack's IDs use too).
macro_rules! text_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub String);

        slack_facts::text_newtype!($name);
    };
}

text_id!(
    /// A program: the `id` of its file under `config/programs/`.
    ProgramId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_round_trip_through_text_and_refuse_other_shapes() {
        let id: DeliveryId = "42".parse().unwrap();
        assert_eq!(id, DeliveryId(42));
        assert_eq!(id.to_string(), "42");
        for bad in ["", "+4", " 4", "-1", "4a", "99999999999999999999"] {
            assert!(bad.parse::<DeliveryId>().is_err(), "{bad}");
        }
        assert_eq!(
            "x".parse::<RoundId>().unwrap_err().to_string(),
            "\"x\" is not a round id"
        );
    }

    #[test]
    fn serde_is_transparent() {
        assert_eq!(serde_json::to_string(&MemberId(7)).unwrap(), "7");
        assert_eq!(serde_json::from_str::<MemberId>("7").unwrap(), MemberId(7));
        let p: ProgramId = serde_json::from_str("\"team\"").unwrap();
        assert_eq!(p, "team");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"team\"");
    }
}
