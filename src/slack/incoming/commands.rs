//! The `/pulse` slash command's text, parsed into a typed command.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PulseCommand {
    Help,
    Status,
    Pause {
        until: Option<NaiveDate>,
    },
    Resume,
    /// `digest` or `digest <program id>`: an ephemeral preview of the digest (owners only).
    Digest {
        program: Option<String>,
    },
    /// `optout` asks for confirmation; `optout confirm` does it.
    OptOut {
        confirmed: bool,
    },
    /// `win <text>`: share a small win (the text as typed, checked by the service).
    Win {
        text: String,
    },
    /// `action <text>`: an owner records what the program changed ("you said, we did").
    Action {
        text: String,
    },
    /// `my-data`: the member's own data, as a JSON file by DM.
    MyData,
    /// `forget-me`: asks to confirm, then erases what pulseloop holds about the member.
    ForgetMe,
    /// `admin`: opens the admin view (program admins only).
    Admin,
    /// Anything we do not understand; answered with help, never silence.
    Unknown {
        input: String,
        problem: Option<String>,
    },
}

impl PulseCommand {
    pub fn parse(text: &str) -> PulseCommand {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let Some(verb) = words.next() else {
            return PulseCommand::Help;
        };
        let rest: Vec<&str> = words.collect();
        let unknown = |problem: Option<String>| PulseCommand::Unknown {
            input: text.to_string(),
            problem,
        };
        match verb.to_ascii_lowercase().as_str() {
            "help" | "?" => PulseCommand::Help,
            "status" => PulseCommand::Status,
            // The rest of the line as typed (line breaks kept), after the verb.
            "win" => PulseCommand::Win {
                text: text[verb.len()..].trim().to_string(),
            },
            "action" => PulseCommand::Action {
                text: text[verb.len()..].trim().to_string(),
            },
            "resume" => PulseCommand::Resume,
            "my-data" | "mydata" | "my_data" if rest.is_empty() => PulseCommand::MyData,
            "forget-me" | "forgetme" | "forget_me" if rest.is_empty() => PulseCommand::ForgetMe,
            "admin" => match rest.as_slice() {
                [] => PulseCommand::Admin,
                _ => unknown(Some("use `/pulse admin`".into())),
            },
            "digest" => match rest.as_slice() {
                [] => PulseCommand::Digest { program: None },
                [program] => PulseCommand::Digest {
                    program: Some(program.to_string()),
                },
                _ => unknown(Some(
                    "use `/pulse digest` or `/pulse digest <program id>`".into(),
                )),
            },
            "optout" | "opt-out" => match rest.as_slice() {
                [] => PulseCommand::OptOut { confirmed: false },
                ["confirm"] => PulseCommand::OptOut { confirmed: true },
                _ => unknown(Some(
                    "use `/pulse optout` or `/pulse optout confirm`".into(),
                )),
            },
            "pause" => match rest.as_slice() {
                [] => PulseCommand::Pause { until: None },
                ["until", date] => match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                    Ok(d) => PulseCommand::Pause { until: Some(d) },
                    Err(_) => unknown(Some(format!("'{date}' is not a date like 2027-03-31"))),
                },
                _ => unknown(Some(
                    "use `/pulse pause` or `/pulse pause until 2027-03-31`".into(),
                )),
            },
            _ => unknown(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_digest_preview() {
        assert_eq!(
            PulseCommand::parse("digest"),
            PulseCommand::Digest { program: None }
        );
        assert_eq!(
            PulseCommand::parse("Digest leadership-2027"),
            PulseCommand::Digest {
                program: Some("leadership-2027".into())
            }
        );
        assert!(matches!(
            PulseCommand::parse("digest a b"),
            PulseCommand::Unknown { .. }
        ));
    }

    #[test]
    fn parses_the_member_controls() {
        assert_eq!(PulseCommand::parse(""), PulseCommand::Help);
        assert_eq!(PulseCommand::parse("  HELP "), PulseCommand::Help);
        assert_eq!(PulseCommand::parse("status"), PulseCommand::Status);
        assert_eq!(PulseCommand::parse("resume"), PulseCommand::Resume);
        assert_eq!(
            PulseCommand::parse("pause until 2027-03-31"),
            PulseCommand::Pause {
                until: NaiveDate::from_ymd_opt(2027, 3, 31)
            }
        );
        assert_eq!(
            PulseCommand::parse("optout confirm"),
            PulseCommand::OptOut { confirmed: true }
        );
        assert!(matches!(
            PulseCommand::parse("pause until tomorrow"),
            PulseCommand::Unknown {
                problem: Some(_),
                ..
            }
        ));
        assert_eq!(
            PulseCommand::parse("WIN  Closed the plan\nwith the team "),
            PulseCommand::Win {
                text: "Closed the plan\nwith the team".into()
            }
        );
        assert_eq!(
            PulseCommand::parse("win"),
            PulseCommand::Win {
                text: String::new()
            }
        );
        assert_eq!(
            PulseCommand::parse("action pilot Tuesday sessions"),
            PulseCommand::Action {
                text: "pilot Tuesday sessions".into()
            }
        );
        assert_eq!(PulseCommand::parse("my-data"), PulseCommand::MyData);
        assert_eq!(PulseCommand::parse(" Forget-Me "), PulseCommand::ForgetMe);
        assert!(matches!(
            PulseCommand::parse("forget-me now"),
            PulseCommand::Unknown { .. }
        ));
        assert!(matches!(
            PulseCommand::parse("dance"),
            PulseCommand::Unknown { problem: None, .. }
        ));
    }
}
