//! Who takes part in the demo: the example program (a copy of
//! `config/programs/leadership-pilot.toml` with sixteen members in five time zones), its owner,
//! the sponsor channel, and how each simulated person tends to answer.

use chrono::NaiveDate;

/// How a simulated person treats a pulse DM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Habit {
    /// Usually answers within a couple of hours of the DM.
    Prompt,
    /// Waits for the reminder, then usually answers.
    Late,
    /// Never answers (their DMs expire at the close).
    Never,
}

/// One simulated member of the program.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    pub id: &'static str,
    pub name: &'static str,
    /// IANA zone, given to the emulator (users.info) and to the program file.
    pub tz: &'static str,
    /// The city the transcript names.
    pub city: &'static str,
    pub role: &'static str,
    pub habit: Habit,
}

const fn person(
    id: &'static str,
    name: &'static str,
    tz: &'static str,
    city: &'static str,
    role: &'static str,
    habit: Habit,
) -> Person {
    Person {
        id,
        name,
        tz,
        city,
        role,
        habit,
    }
}

/// The program's members: five leaders and eleven participants in Berlin, New York, Kolkata,
/// London and Auckland.
pub const PEOPLE: [Person; 16] = [
    person(
        "U0AMARA",
        "Amara Okafor",
        "Europe/Berlin",
        "Berlin",
        "leader",
        Habit::Prompt,
    ),
    person(
        "U0BEN",
        "Ben Fischer",
        "America/New_York",
        "New York",
        "leader",
        Habit::Late,
    ),
    person(
        "U0CHLOE",
        "Chloé Martin",
        "Europe/London",
        "London",
        "leader",
        Habit::Prompt,
    ),
    person(
        "U0DANIEL",
        "Daniel Kim",
        "Pacific/Auckland",
        "Auckland",
        "leader",
        Habit::Prompt,
    ),
    person(
        "U0ELENA",
        "Elena Rossi",
        "Europe/Berlin",
        "Berlin",
        "leader",
        Habit::Late,
    ),
    person(
        "U0FARID",
        "Farid Haddad",
        "Asia/Kolkata",
        "Kolkata",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0GRACE",
        "Grace Lee",
        "America/New_York",
        "New York",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0HUGO",
        "Hugo Silva",
        "Europe/London",
        "London",
        "participant",
        Habit::Late,
    ),
    person(
        "U0INES",
        "Ines Weber",
        "Europe/Berlin",
        "Berlin",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0JONAS",
        "Jonas Berg",
        "Europe/Berlin",
        "Berlin",
        "participant",
        Habit::Late,
    ),
    person(
        "U0KEIKO",
        "Keiko Tanaka",
        "Pacific/Auckland",
        "Auckland",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0LIAM",
        "Liam Walsh",
        "Europe/London",
        "London",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0MAYA",
        "Maya Patel",
        "Asia/Kolkata",
        "Kolkata",
        "participant",
        Habit::Late,
    ),
    person(
        "U0NOAH",
        "Noah Cohen",
        "America/New_York",
        "New York",
        "participant",
        Habit::Prompt,
    ),
    person(
        "U0OLIVIA",
        "Olivia Brown",
        "Pacific/Auckland",
        "Auckland",
        "participant",
        Habit::Never,
    ),
    person(
        "U0PAVEL",
        "Pavel Novak",
        "Asia/Kolkata",
        "Kolkata",
        "participant",
        Habit::Prompt,
    ),
];

/// The program owner: records "you said, we did" actions with `/pulse action`.
pub const OWNER: Person = person(
    "U0OWNER01",
    "Sofia Alvarez",
    "Europe/Berlin",
    "Berlin",
    "owner",
    Habit::Never,
);

/// The program admin named in the file (not a member; takes no part in the demo).
pub const ADMIN: Person = person(
    "U0ADMIN01",
    "Tomás Ruiz",
    "Europe/Berlin",
    "Berlin",
    "admin",
    Habit::Never,
);

pub const SPONSOR_CHANNEL: &str = "C0SPONSOR1";
pub const SPONSOR_CHANNEL_NAME: &str = "coaching-sponsors";
/// Where the message celebrated with the "Celebrate as a small win" shortcut was written.
pub const GENERAL_CHANNEL: &str = "C0GENERAL";
pub const GENERAL_CHANNEL_NAME: &str = "general";

pub const PROGRAM_ID: &str = "leadership-pilot";
pub const PROGRAM_FILE: &str = "leadership-pilot.toml";

/// The first Monday of the simulated weeks: a fixed date, so one seed always tells the same
/// story (1 March, the monthly check's firing, falls in the second week).
pub fn start_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 2, 22).expect("a valid date")
}

/// The kind of each question of the demo program, by metric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scale,
    Enps,
    Choice,
    Text,
    Win,
}

pub fn question_kind(key: &str) -> Option<Kind> {
    match key {
        "coaching_value" | "confidence" => Some(Kind::Scale),
        "program_enps" => Some(Kind::Enps),
        "focus_area" => Some(Kind::Choice),
        "comment" => Some(Kind::Text),
        "small_win" => Some(Kind::Win),
        _ => None,
    }
}

/// The survey a pulse DM belongs to, from its notification text (which quotes the first
/// question).
pub fn survey_of_text(text: &str) -> &'static str {
    if text.contains("recommend this coaching program") {
        "Monthly check"
    } else {
        "Weekly pulse"
    }
}

/// The demo's copy of the example program: the same surveys, digest and rules as
/// `config/programs/leadership-pilot.toml`, with the members above, no holidays, and
/// `start_date` on the first simulated Monday.
pub fn program_toml(start: NaiveDate) -> String {
    let mut toml = format!(
        r#"# The demo's copy of config/programs/leadership-pilot.toml, written by `pulseloop demo`.
id = "{PROGRAM_ID}"
name = "Leadership Coaching Pilot"
timezone = "Europe/Berlin"
start_date = "{start}"
working_days = ["MON", "TUE", "WED", "THU", "FRI"]
working_hours = ["09:00", "18:00"]
on_non_working_day = "next_working_day"
misfire = "send_late"
out_of_office = "wait"
sponsor_channels = ["{SPONSOR_CHANNEL}"]
owners = ["{owner}"]
admins = ["{admin}"]
anonymity_threshold = 5
comment_threshold = 5
baseline_rounds = 2
"#,
        owner = OWNER.id,
        admin = ADMIN.id,
    );
    for p in &PEOPLE {
        toml.push_str(&format!(
            "\n[[members]]\nslack_id = \"{}\"   # {}, {}\nrole = \"{}\"\ntimezone = \"{}\"\n",
            p.id, p.name, p.city, p.role, p.tz
        ));
    }
    toml.push_str(SURVEYS);
    toml
}

const SURVEYS: &str = r#"
[[surveys]]
id = "weekly-pulse"
name = "Weekly pulse"
audience = ["leader", "participant"]
cadence = "0 10 * * MON"
every_weeks = 1
window_hours = 48
remind_after_hours = 24
anonymity = "anonymous"

[[surveys.questions]]
key = "coaching_value"
kind = "scale"
prompt = "How valuable was coaching for you this week?"
low_label = "Not at all"
high_label = "Extremely"

[[surveys.questions]]
key = "confidence"
kind = "scale"
prompt = "How confident do you feel leading your team right now?"
low_label = "Not confident"
high_label = "Very confident"

[[surveys.questions]]
key = "focus_area"
kind = "choice"
prompt = "What did you work on most this week?"
options = ["Feedback conversations", "Delegation", "Strategy", "Well-being"]

[[surveys.questions]]
key = "comment"
kind = "text"
prompt = "Anything you want the program team to know? (optional)"

[[surveys]]
id = "monthly-enps"
name = "Monthly check"
audience = ["participant"]
cadence = "0 9 1 * *"
every_weeks = 1
window_hours = 72
remind_after_hours = 48
anonymity = "confidential"

[[surveys.questions]]
key = "program_enps"
kind = "enps"
prompt = "How likely are you to recommend this coaching program to a colleague?"

[[surveys.questions]]
key = "small_win"
kind = "win"
prompt = "Share a small win from this month (optional)"

[digest]
cadence = "0 16 * * FRI"
chart = true
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_program_is_a_valid_program_with_every_member() {
        let dir = std::env::temp_dir().join(format!("pulseloop-demo-cast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(PROGRAM_FILE), program_toml(start_date())).unwrap();
        let programs = crate::config::program::load_programs(&dir);
        std::fs::remove_dir_all(&dir).ok();
        let programs = programs.expect("the demo program is valid");
        assert_eq!(programs.len(), 1);
        assert_eq!(programs[0].members.len(), PEOPLE.len());
        for s in &programs[0].surveys {
            for q in &s.questions {
                assert!(question_kind(&q.key).is_some(), "{} has a kind", q.key);
            }
        }
    }

    #[test]
    fn the_cast_spans_five_zones_and_every_habit() {
        let zones: std::collections::BTreeSet<_> = PEOPLE.iter().map(|p| p.tz).collect();
        assert_eq!(zones.len(), 5);
        for habit in [Habit::Prompt, Habit::Late, Habit::Never] {
            assert!(PEOPLE.iter().any(|p| p.habit == habit));
        }
    }
}
