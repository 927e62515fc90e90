//! Programs, surveys and questions: the validated model a program file becomes (parsing and
//! validation live in `config::program`). Pure data and the anonymity floor; no I/O.

use super::ids::ProgramId;
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::cadence::{Cadence, NonWorkingDayPolicy, WorkingDays};

/// The anonymity floor: no threshold may go below it.
pub const MIN_THRESHOLD: u32 = 3;
pub const MAX_QUESTIONS: usize = 20;
pub const MAX_CHOICE_OPTIONS: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Participant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Participant => "participant",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "leader" => Some(Role::Leader),
            "participant" => Some(Role::Participant),
            _ => None,
        }
    }
}

super::state::text_enum! {
    /// A round's anonymity promise (docs/anonymity.md).
    Anonymity: "anonymity mode" {
        /// Answers are unlinked from the person when the round closes.
        Anonymous = "anonymous",
        /// Linked, visible to the member alone; others see aggregates.
        Confidential = "confidential",
        /// Owners see names.
        Attributed = "attributed",
    }
}

impl Anonymity {
    /// A promise that protects less than `other` (attributed < confidential < anonymous).
    pub fn is_weaker_than(self, other: Anonymity) -> bool {
        fn strength(a: Anonymity) -> u8 {
            match a {
                Anonymity::Attributed => 0,
                Anonymity::Confidential => 1,
                Anonymity::Anonymous => 2,
            }
        }
        strength(self) < strength(other)
    }
}

/// The mode a round opened with, as stored; `fallback` (the configuration's) only for a round
/// that has none stored (rounds older than the column).
pub fn round_anonymity(stored: Option<Anonymity>, fallback: Anonymity) -> Anonymity {
    stored.unwrap_or(fallback)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    Scale,
    Enps,
    Choice,
    YesNo,
    Text,
    Win,
}

impl QuestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Scale => "scale",
            QuestionKind::Enps => "enps",
            QuestionKind::Choice => "choice",
            QuestionKind::YesNo => "yes_no",
            QuestionKind::Text => "text",
            QuestionKind::Win => "win",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scale" => Self::Scale,
            "enps" => Self::Enps,
            "choice" => Self::Choice,
            "yes_no" => Self::YesNo,
            "text" => Self::Text,
            "win" => Self::Win,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// After downtime, send as soon as possible while the window is open.
    SendLate,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfOfficePolicy {
    /// Hold the delivery until the status clears within the window, else it expires.
    Wait,
    /// Send regardless of status.
    Ignore,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub id: ProgramId,
    pub name: String,
    pub file: PathBuf,
    pub timezone: Tz,
    pub start_date: NaiveDate,
    pub working_days: WorkingDays,
    pub working_hours: (NaiveTime, NaiveTime),
    pub holidays: BTreeSet<NaiveDate>,
    pub sponsor_channels: Vec<String>,
    pub owners: Vec<String>,
    pub admins: Vec<String>,
    pub anonymity_threshold: u32,
    pub comment_threshold: u32,
    pub baseline_rounds: u32,
    pub on_non_working_day: NonWorkingDayPolicy,
    pub misfire: MisfirePolicy,
    pub out_of_office: OutOfOfficePolicy,
    pub members: Vec<MemberSpec>,
    pub usergroups: Vec<UsergroupSpec>,
    pub surveys: Vec<Survey>,
    pub digest: DigestSpec,
}

#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub slack_id: String,
    pub role: Role,
    pub timezone: Option<Tz>,
    pub working_days: Option<WorkingDays>,
}

#[derive(Debug, Clone)]
pub struct UsergroupSpec {
    pub usergroup: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Survey {
    pub id: String,
    pub name: String,
    pub audience: Vec<Role>,
    pub cadence: Cadence,
    pub every_weeks: u32,
    pub window_hours: u32,
    pub remind_after_hours: Option<u32>,
    pub anonymity: Anonymity,
    pub questions: Vec<Question>,
    /// A paused survey opens no new rounds (the file's `paused`, or an admin's run-time edit;
    /// docs/config-precedence.md). Rounds already open run to their end.
    pub paused: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub key: String,
    pub kind: QuestionKind,
    pub prompt: String,
    pub low_label: Option<String>,
    pub high_label: Option<String>,
    pub options: Vec<String>,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct DigestSpec {
    pub cadence: Cadence,
    pub chart: bool,
}

impl Program {
    pub fn survey(&self, id: &str) -> Option<&Survey> {
        self.surveys.iter().find(|s| s.id == id)
    }
}

impl Survey {
    pub fn question(&self, key: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.key == key)
    }
}
