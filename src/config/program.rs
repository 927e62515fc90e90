//! Programs as code: `config/programs/*.toml`, one program per file.
//!
//! A file is read into loose `*File` structs (every unknown key is collected, not fatal),
//! then validated field by field into the typed [`Program`], so `check-config` can report
//! every problem at once, each with its file and field.

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use super::{ConfigError, ConfigErrors};
use crate::domain::cadence::{Cadence, NonWorkingDayPolicy, WorkingDays};

pub use crate::domain::program::*;
/// Words a question key may not be: a DM's block ids name a question or one of these parts
/// (`pulse:{delivery}:all`, `pulse:{delivery}:change`, see `slack::protocol::PulseBlockId`).
pub const RESERVED_QUESTION_KEYS: [&str; 2] = ["all", "change"];

// ---------- the file as written ----------

type Extra = BTreeMap<String, toml::Value>;

#[derive(Debug, Deserialize)]
struct ProgramFile {
    id: Option<String>,
    name: Option<String>,
    timezone: Option<String>,
    start_date: Option<String>,
    working_days: Option<Vec<String>>,
    working_hours: Option<Vec<String>>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    sponsor_channels: Vec<String>,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default)]
    admins: Vec<String>,
    anonymity_threshold: Option<i64>,
    comment_threshold: Option<i64>,
    baseline_rounds: Option<i64>,
    on_non_working_day: Option<String>,
    misfire: Option<String>,
    out_of_office: Option<String>,
    #[serde(default)]
    members: Vec<MemberFile>,
    #[serde(default)]
    usergroups: Vec<UsergroupFile>,
    #[serde(default)]
    surveys: Vec<SurveyFile>,
    digest: Option<DigestFile>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct MemberFile {
    slack_id: Option<String>,
    role: Option<String>,
    timezone: Option<String>,
    working_days: Option<Vec<String>>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct UsergroupFile {
    usergroup: Option<String>,
    role: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct SurveyFile {
    id: Option<String>,
    name: Option<String>,
    audience: Option<Vec<String>>,
    cadence: Option<String>,
    every_weeks: Option<i64>,
    window_hours: Option<i64>,
    remind_after_hours: Option<i64>,
    anonymity: Option<String>,
    paused: Option<bool>,
    #[serde(default)]
    questions: Vec<QuestionFile>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct QuestionFile {
    key: Option<String>,
    kind: Option<String>,
    prompt: Option<String>,
    low_label: Option<String>,
    high_label: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    required: Option<bool>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Deserialize)]
struct DigestFile {
    cadence: Option<String>,
    chart: Option<bool>,
    #[serde(flatten)]
    extra: Extra,
}

// ---------- validation ----------

/// Collects problems while a file is validated.
struct Check<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Check<'_> {
    fn err(&mut self, field: impl AsRef<str>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::field(self.file, field.as_ref(), message));
    }

    fn unknown_keys(&mut self, prefix: &str, extra: &Extra) {
        for key in extra.keys() {
            let field = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            self.err(field, "unknown key");
        }
    }

    fn required<'v>(&mut self, field: &str, value: &'v Option<String>) -> Option<&'v str> {
        match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                self.err(field, "is required");
                None
            }
        }
    }

    fn timezone(&mut self, field: &str, value: &str) -> Option<Tz> {
        match value.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.err(
                    field,
                    format!("'{value}' is not an IANA time zone like Europe/Berlin"),
                );
                None
            }
        }
    }

    fn date(&mut self, field: &str, value: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.err(field, format!("'{value}' is not a date like 2027-01-04"));
                None
            }
        }
    }

    fn weekdays(&mut self, field: &str, names: &[String]) -> Option<WorkingDays> {
        match WorkingDays::parse_names(names) {
            Ok(set) => Some(set),
            Err(e) => {
                self.err(field, e.to_string());
                None
            }
        }
    }

    fn cadence(&mut self, field: &str, value: &Option<String>) -> Option<Cadence> {
        let text = self.required(field, value)?;
        match Cadence::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                self.err(field, format!("bad cron '{text}': {e}"));
                None
            }
        }
    }

    fn role(&mut self, field: &str, value: &Option<String>) -> Option<Role> {
        let text = self.required(field, value)?;
        let role = Role::parse(text);
        if role.is_none() {
            self.err(
                field,
                format!("'{text}' is not a role (leader | participant)"),
            );
        }
        role
    }

    fn count(&mut self, field: &str, value: Option<i64>, default: u32, min: u32, max: u32) -> u32 {
        match value {
            None => default,
            Some(v) if v >= i64::from(min) && v <= i64::from(max) => v as u32,
            Some(v) => {
                self.err(field, format!("{v} is out of range {min}..={max}"));
                default
            }
        }
    }

    /// Anonymity thresholds have a floor: fewer than 3 respondents can always be told apart.
    fn threshold(&mut self, field: &str, value: Option<i64>) -> u32 {
        match value {
            Some(v) if v < i64::from(MIN_THRESHOLD) => {
                self.err(
                    field,
                    format!("{v} is below the anonymity floor of {MIN_THRESHOLD}"),
                );
                5
            }
            other => self.count(field, other, 5, MIN_THRESHOLD, 1000),
        }
    }

    fn slack_id(&mut self, field: &str, value: &str, prefixes: &[char], what: &str) -> bool {
        let ok = value.len() >= 2
            && value.starts_with(prefixes)
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            self.err(field, format!("'{value}' is not a Slack {what} id"));
        }
        ok
    }

    fn slug(&mut self, field: &str, value: &str) -> bool {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            self.err(
                field,
                format!("'{value}' must be 1-64 characters of a-z, 0-9, '-' or '_'"),
            );
        }
        ok
    }
}

/// A setting a program file spells as one of a fixed set of names, with the value it takes
/// when the file leaves it out.
trait Choice: Copy + 'static {
    const DEFAULT: Self;
    const NAMES: &'static [(&'static str, Self)];
}

impl Choice for NonWorkingDayPolicy {
    const DEFAULT: Self = NonWorkingDayPolicy::NextWorkingDay;
    const NAMES: &'static [(&'static str, Self)] = &[
        ("next_working_day", NonWorkingDayPolicy::NextWorkingDay),
        ("skip", NonWorkingDayPolicy::Skip),
    ];
}

impl Choice for MisfirePolicy {
    const DEFAULT: Self = MisfirePolicy::SendLate;
    const NAMES: &'static [(&'static str, Self)] = &[
        ("send_late", MisfirePolicy::SendLate),
        ("skip", MisfirePolicy::Skip),
    ];
}

impl Choice for OutOfOfficePolicy {
    const DEFAULT: Self = OutOfOfficePolicy::Wait;
    const NAMES: &'static [(&'static str, Self)] = &[
        ("wait", OutOfOfficePolicy::Wait),
        ("ignore", OutOfOfficePolicy::Ignore),
    ];
}

impl Choice for Anonymity {
    const DEFAULT: Self = Anonymity::Anonymous;
    const NAMES: &'static [(&'static str, Self)] = &[
        ("anonymous", Anonymity::Anonymous),
        ("confidential", Anonymity::Confidential),
        ("attributed", Anonymity::Attributed),
    ];
}

/// The named choice in `value`, its default when absent; an unknown name is an error that
/// lists the names.
fn parse_choice<T: Choice>(check: &mut Check, field: &str, value: &Option<String>) -> T {
    let Some(text) = value.as_deref() else {
        return T::DEFAULT;
    };
    match T::NAMES.iter().find(|(name, _)| *name == text) {
        Some((_, v)) => *v,
        None => {
            let names: Vec<&str> = T::NAMES.iter().map(|(n, _)| *n).collect();
            check.err(
                field,
                format!("'{text}' is not one of {}", names.join(" | ")),
            );
            T::DEFAULT
        }
    }
}

fn parse_time(check: &mut Check, field: &str, value: &str) -> Option<NaiveTime> {
    match NaiveTime::parse_from_str(value, "%H:%M") {
        Ok(t) => Some(t),
        Err(_) => {
            check.err(field, format!("'{value}' is not a time like 09:00"));
            None
        }
    }
}

/// Parses and validates one program file's text. Problems are collected in file order, so
/// `check-config` lists them as a reader meets them.
pub fn parse_program(file: &Path, text: &str) -> Result<Program, ConfigErrors> {
    let raw: ProgramFile =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let mut c = Check {
        file,
        errors: Vec::new(),
    };
    c.unknown_keys("", &raw.extra);

    let id = c.required("id", &raw.id).map(str::to_string);
    if let Some(id) = &id {
        c.slug("id", id);
    }
    let name = c.required("name", &raw.name).map(str::to_string);
    let timezone = c
        .required("timezone", &raw.timezone)
        .and_then(|tz| c.timezone("timezone", tz));
    let start_date = c
        .required("start_date", &raw.start_date)
        .and_then(|d| c.date("start_date", d));
    let working_days = match &raw.working_days {
        Some(names) => c.weekdays("working_days", names),
        None => Some(WorkingDays::mon_to_fri()),
    };
    let working_hours = working_hours(&mut c, raw.working_hours.as_deref());
    let holidays = holidays(&mut c, &raw.holidays);
    check_people(&mut c, &raw);
    let policies = policies(&mut c, &raw);
    let members = members(&mut c, &raw.members);
    let usergroups = usergroups(&mut c, &raw.usergroups);
    let surveys = surveys(&mut c, &raw.surveys);
    let digest = digest(&mut c, raw.digest.as_ref());

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    let (
        Some(id),
        Some(name),
        Some(timezone),
        Some(start_date),
        Some(working_days),
        Some(working_hours),
        Some(digest),
    ) = (
        id,
        name,
        timezone,
        start_date,
        working_days,
        working_hours,
        digest,
    )
    else {
        return Err(ConfigError::file(file, "program is incomplete").into());
    };
    Ok(Program {
        id: id.into(),
        name,
        file: file.to_path_buf(),
        timezone,
        start_date,
        working_days,
        working_hours,
        holidays,
        sponsor_channels: raw.sponsor_channels,
        owners: raw.owners,
        admins: raw.admins,
        anonymity_threshold: policies.anonymity_threshold,
        comment_threshold: policies.comment_threshold,
        baseline_rounds: policies.baseline_rounds,
        on_non_working_day: policies.on_non_working_day,
        misfire: policies.misfire,
        out_of_office: policies.out_of_office,
        members,
        usergroups,
        surveys,
        digest,
    })
}

/// `working_hours`: two `HH:MM` times, start before end; 09:00-18:00 when absent.
fn working_hours(c: &mut Check, value: Option<&[String]>) -> Option<(NaiveTime, NaiveTime)> {
    match value {
        None => Some((
            NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
        )),
        Some([from, to]) => {
            let from = parse_time(c, "working_hours[0]", from);
            let to = parse_time(c, "working_hours[1]", to);
            match (from, to) {
                (Some(f), Some(t)) if f < t => Some((f, t)),
                (Some(_), Some(_)) => {
                    c.err("working_hours", "the start must be before the end");
                    None
                }
                _ => None,
            }
        }
        Some(_) => {
            c.err(
                "working_hours",
                "must be two times, like [\"09:00\", \"18:00\"]",
            );
            None
        }
    }
}

fn holidays(c: &mut Check, values: &[String]) -> BTreeSet<NaiveDate> {
    let mut holidays = BTreeSet::new();
    for (i, h) in values.iter().enumerate() {
        if let Some(d) = c.date(&format!("holidays[{i}]"), h) {
            holidays.insert(d);
        }
    }
    holidays
}

/// Sponsor channels, owners and admins must be Slack ids of the right kind.
fn check_people(c: &mut Check, raw: &ProgramFile) {
    for (i, ch) in raw.sponsor_channels.iter().enumerate() {
        c.slack_id(
            &format!("sponsor_channels[{i}]"),
            ch,
            &['C', 'G'],
            "channel",
        );
    }
    for (i, u) in raw.owners.iter().enumerate() {
        c.slack_id(&format!("owners[{i}]"), u, &['U', 'W'], "user");
    }
    for (i, u) in raw.admins.iter().enumerate() {
        c.slack_id(&format!("admins[{i}]"), u, &['U', 'W'], "user");
    }
}

/// The program's thresholds and policies, defaults filled in.
struct Policies {
    anonymity_threshold: u32,
    comment_threshold: u32,
    baseline_rounds: u32,
    on_non_working_day: NonWorkingDayPolicy,
    misfire: MisfirePolicy,
    out_of_office: OutOfOfficePolicy,
}

fn policies(c: &mut Check, raw: &ProgramFile) -> Policies {
    let anonymity_threshold = c.threshold("anonymity_threshold", raw.anonymity_threshold);
    let comment_threshold = c.threshold("comment_threshold", raw.comment_threshold);
    if comment_threshold < anonymity_threshold {
        c.err(
            "comment_threshold",
            format!("{comment_threshold} is below anonymity_threshold ({anonymity_threshold}); comments need at least as many respondents"),
        );
    }
    let baseline_rounds = c.count("baseline_rounds", raw.baseline_rounds, 2, 1, 52);
    let on_non_working_day = parse_choice(c, "on_non_working_day", &raw.on_non_working_day);
    let misfire = parse_choice(c, "misfire", &raw.misfire);
    let out_of_office = parse_choice(c, "out_of_office", &raw.out_of_office);
    Policies {
        anonymity_threshold,
        comment_threshold,
        baseline_rounds,
        on_non_working_day,
        misfire,
        out_of_office,
    }
}

/// `[[members]]`: Slack user ids, each once.
fn members(c: &mut Check, raw: &[MemberFile]) -> Vec<MemberSpec> {
    let mut members = Vec::new();
    let mut seen_members = HashSet::new();
    for (i, m) in raw.iter().enumerate() {
        let at = format!("members[{i}]");
        c.unknown_keys(&at, &m.extra);
        let slack_id = c
            .required(&format!("{at}.slack_id"), &m.slack_id)
            .map(str::to_string);
        let role = c.role(&format!("{at}.role"), &m.role);
        let tz = m
            .timezone
            .as_deref()
            .and_then(|tz| c.timezone(&format!("{at}.timezone"), tz));
        let wd = m
            .working_days
            .as_ref()
            .and_then(|names| c.weekdays(&format!("{at}.working_days"), names));
        if let Some(id) = &slack_id {
            if c.slack_id(&format!("{at}.slack_id"), id, &['U', 'W'], "user")
                && !seen_members.insert(id.clone())
            {
                c.err(format!("{at}.slack_id"), format!("duplicate member {id}"));
            }
        }
        if let (Some(slack_id), Some(role)) = (slack_id, role) {
            members.push(MemberSpec {
                slack_id,
                role,
                timezone: tz,
                working_days: wd,
            });
        }
    }
    members
}

fn usergroups(c: &mut Check, raw: &[UsergroupFile]) -> Vec<UsergroupSpec> {
    let mut usergroups = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let at = format!("usergroups[{i}]");
        c.unknown_keys(&at, &g.extra);
        let id = c
            .required(&format!("{at}.usergroup"), &g.usergroup)
            .map(str::to_string);
        let role = c.role(&format!("{at}.role"), &g.role);
        if let Some(id) = &id {
            c.slack_id(&format!("{at}.usergroup"), id, &['S'], "user group");
        }
        if let (Some(usergroup), Some(role)) = (id, role) {
            usergroups.push(UsergroupSpec { usergroup, role });
        }
    }
    usergroups
}

/// `[[surveys]]`: at least one, distinct ids.
fn surveys(c: &mut Check, raw: &[SurveyFile]) -> Vec<Survey> {
    let mut surveys = Vec::new();
    let mut seen_surveys = HashSet::new();
    if raw.is_empty() {
        c.err("surveys", "a program needs at least one [[surveys]]");
    }
    for (i, s) in raw.iter().enumerate() {
        if let Some(id) = s.id.as_deref().filter(|id| !id.is_empty()) {
            if !seen_surveys.insert(id.to_string()) {
                c.err(
                    format!("surveys[{i}].id"),
                    format!("duplicate survey id '{id}'"),
                );
            }
        }
        if let Some(survey) = validate_survey(c, i, s) {
            surveys.push(survey);
        }
    }
    surveys
}

/// `[digest]`; Fridays at 16:00 with a chart when absent.
fn digest(c: &mut Check, raw: Option<&DigestFile>) -> Option<DigestSpec> {
    match raw {
        Some(d) => {
            c.unknown_keys("digest", &d.extra);
            c.cadence("digest.cadence", &d.cadence)
                .map(|cadence| DigestSpec {
                    cadence,
                    chart: d.chart.unwrap_or(true),
                })
        }
        None => Cadence::parse("0 16 * * FRI")
            .ok()
            .map(|cadence| DigestSpec {
                cadence,
                chart: true,
            }),
    }
}

fn validate_survey(c: &mut Check, i: usize, s: &SurveyFile) -> Option<Survey> {
    let at = format!("surveys[{i}]");
    c.unknown_keys(&at, &s.extra);
    let id = c.required(&format!("{at}.id"), &s.id).map(str::to_string);
    if let Some(id) = &id {
        c.slug(&format!("{at}.id"), id);
    }
    let audience = audience(c, &at, s.audience.as_deref());
    let cadence = c.cadence(&format!("{at}.cadence"), &s.cadence);
    let every_weeks = c.count(&format!("{at}.every_weeks"), s.every_weeks, 1, 1, 52);
    let (window_hours, remind_after_hours) = window(c, &at, s);
    if let Some(cadence) = &cadence {
        rounds_fit_their_window(c, &at, cadence, window_hours, every_weeks);
    }
    let anonymity = parse_choice(c, &format!("{at}.anonymity"), &s.anonymity);
    let questions = questions(c, &at, &s.questions);
    Some(Survey {
        id: id?,
        name: s.name.clone().unwrap_or_else(|| "Pulse".to_string()),
        audience,
        cadence: cadence?,
        every_weeks,
        window_hours,
        remind_after_hours,
        anonymity,
        questions,
        paused: s.paused.unwrap_or(false),
    })
}

/// A survey's round stays open `window_hours`; a cadence that fires again sooner would open
/// rounds faster than they close (a per-second cadence queued thousands of DMs in one tick),
/// so it is refused with the gap it has.
fn rounds_fit_their_window(
    c: &mut Check,
    at: &str,
    cadence: &Cadence,
    window_hours: u32,
    every_weeks: u32,
) {
    let window = chrono::Duration::hours(i64::from(window_hours));
    if let Some(gap) = cadence.gap_shorter_than(window, every_weeks > 1) {
        c.err(
            format!("{at}.cadence"),
            format!(
                "'{}' fires again after {}, but a round stays open {window_hours} hours \
                 (window_hours): fire at most once per window, or shorten window_hours to at \
                 most the time between firings",
                cadence.source(),
                crate::domain::cadence::describe_gap(gap)
            ),
        );
    }
}

/// What is valid but surely not meant: a cadence that never fires (`0 9 30 FEB *`).
/// `check-config` prints these as warnings and the service logs them; neither refuses.
pub fn warnings(program: &Program) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in program.surveys.iter().enumerate() {
        if !s.cadence.fires_ever() {
            out.push(format!(
                "{}: surveys[{i}].cadence: '{}' never fires (no date matches it): survey '{}' will never be sent",
                program.file.display(),
                s.cadence.source(),
                s.id
            ));
        }
    }
    if !program.digest.cadence.fires_ever() {
        out.push(format!(
            "{}: digest.cadence: '{}' never fires (no date matches it): no digest will be posted",
            program.file.display(),
            program.digest.cadence.source()
        ));
    }
    out
}

/// A survey's `audience`: roles, each once; everyone when absent.
fn audience(c: &mut Check, at: &str, value: Option<&[String]>) -> Vec<Role> {
    let mut audience = Vec::new();
    match value {
        None => audience = vec![Role::Leader, Role::Participant],
        Some([]) => c.err(format!("{at}.audience"), "must name at least one role"),
        Some(list) => {
            for (j, r) in list.iter().enumerate() {
                match Role::parse(r) {
                    Some(role) if !audience.contains(&role) => audience.push(role),
                    Some(_) => {}
                    None => c.err(
                        format!("{at}.audience[{j}]"),
                        format!("'{r}' is not a role (leader | participant)"),
                    ),
                }
            }
        }
    }
    audience
}

/// A survey's `window_hours` and `remind_after_hours` (the reminder falls inside the window).
fn window(c: &mut Check, at: &str, s: &SurveyFile) -> (u32, Option<u32>) {
    let window_hours = c.count(
        &format!("{at}.window_hours"),
        s.window_hours,
        48,
        1,
        24 * 14,
    );
    let remind_after_hours = s.remind_after_hours.map(|_| {
        c.count(
            &format!("{at}.remind_after_hours"),
            s.remind_after_hours,
            24,
            1,
            24 * 14,
        )
    });
    if let Some(r) = remind_after_hours {
        if r >= window_hours {
            c.err(
                format!("{at}.remind_after_hours"),
                format!("{r} must be less than window_hours ({window_hours})"),
            );
        }
    }
    (window_hours, remind_after_hours)
}

/// A survey's questions: 1 to [`MAX_QUESTIONS`], distinct keys.
fn questions(c: &mut Check, at: &str, raw: &[QuestionFile]) -> Vec<Question> {
    if raw.is_empty() {
        c.err(
            format!("{at}.questions"),
            "a survey needs at least one [[surveys.questions]]",
        );
    }
    if raw.len() > MAX_QUESTIONS {
        c.err(
            format!("{at}.questions"),
            format!(
                "{} questions; at most {MAX_QUESTIONS} fit a pulse",
                raw.len()
            ),
        );
    }
    let mut keys = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(j, q)| validate_question(c, &format!("{at}.questions[{j}]"), q, &mut keys))
        .collect()
}

fn validate_question(
    c: &mut Check,
    qat: &str,
    q: &QuestionFile,
    keys: &mut HashSet<String>,
) -> Option<Question> {
    c.unknown_keys(qat, &q.extra);
    let key = c
        .required(&format!("{qat}.key"), &q.key)
        .map(str::to_string);
    if let Some(key) = &key {
        // The slug rule keeps keys short (1-64) and free of ':', so every id built from
        // a key fits Slack's 255 characters and splits back into its parts.
        let field = format!("{qat}.key");
        if c.slug(&field, key) {
            if RESERVED_QUESTION_KEYS.contains(&key.as_str()) {
                let reserved = RESERVED_QUESTION_KEYS.join(", ");
                c.err(
                    field,
                    format!("'{key}' is reserved ({reserved}): choose another key"),
                );
            } else if !keys.insert(key.clone()) {
                c.err(field, format!("duplicate question key '{key}'"));
            }
        }
    }
    let kind = c.required(&format!("{qat}.kind"), &q.kind).and_then(|k| {
        let kind = QuestionKind::parse(k);
        if kind.is_none() {
            c.err(
                format!("{qat}.kind"),
                format!(
                    "unknown question kind '{k}' (scale | enps | choice | yes_no | text | win)"
                ),
            );
        }
        kind
    });
    let prompt = c
        .required(&format!("{qat}.prompt"), &q.prompt)
        .map(str::to_string);
    check_options(c, qat, kind, &q.options);
    let (key, kind, prompt) = (key?, kind?, prompt?);
    Some(Question {
        key,
        kind,
        prompt,
        low_label: q.low_label.clone(),
        high_label: q.high_label.clone(),
        options: q.options.clone(),
        required: q
            .required
            .unwrap_or(!matches!(kind, QuestionKind::Text | QuestionKind::Win)),
    })
}

/// Choice questions take 2 to [`MAX_CHOICE_OPTIONS`] distinct, non-empty options; no other
/// kind takes options.
fn check_options(c: &mut Check, qat: &str, kind: Option<QuestionKind>, options: &[String]) {
    if kind == Some(QuestionKind::Choice) {
        if options.len() < 2 || options.len() > MAX_CHOICE_OPTIONS {
            c.err(
                format!("{qat}.options"),
                format!("a choice question needs 2 to {MAX_CHOICE_OPTIONS} options"),
            );
        }
        let unique: HashSet<&String> = options.iter().collect();
        if unique.len() != options.len() {
            c.err(format!("{qat}.options"), "options must be distinct");
        }
        if options.iter().any(|o| o.trim().is_empty()) {
            c.err(format!("{qat}.options"), "options must not be empty");
        }
    } else if !options.is_empty() {
        c.err(
            format!("{qat}.options"),
            "only choice questions take options",
        );
    }
}

/// Loads every `*.toml` in `dir` (sorted by name); programs must have distinct ids.
pub fn load_programs(dir: &Path) -> Result<Vec<Program>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut programs: Vec<Program> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError::io(dir, &e).into()),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::io(&path, &e));
                continue;
            }
        };
        match parse_program(&path, &text) {
            Ok(p) => {
                if let Some(other) = programs.iter().find(|o| o.id == p.id) {
                    errors.push(ConfigError::field(
                        &path,
                        "id",
                        format!(
                            "duplicate program id '{}' (also in {})",
                            p.id,
                            other.file.display()
                        ),
                    ));
                } else {
                    programs.push(p);
                }
            }
            Err(ConfigErrors(list)) => errors.extend(list),
        }
    }
    if errors.is_empty() {
        Ok(programs)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem of a file, in order, as `check-config` prints them.
    fn problems(text: &str) -> Vec<String> {
        match parse_program(Path::new("p.toml"), text) {
            Ok(p) => panic!("should be rejected, parsed {}", p.id),
            Err(ConfigErrors(list)) => list.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_problem_is_reported_in_file_order_with_its_field() {
        let text = r#"
id = "Bad Id"
timezone = "Mars/Olympus"
start_date = "2027-13-01"
working_days = ["MON", "FUNDAY"]
working_hours = ["18:00", "09:00"]
holidays = ["someday"]
sponsor_channels = ["X1"]
owners = ["u1"]
admins = ["W1", "C1"]
anonymity_threshold = 2
comment_threshold = 4
baseline_rounds = 99
on_non_working_day = "later"
misfire = "never"
out_of_office = "maybe"
colour = "blue"

[[members]]
slack_id = "U0A"
role = "boss"
timezone = "Nowhere"
working_days = []
shoe_size = 44

[[members]]
slack_id = "U0A"
role = "leader"

[[usergroups]]
usergroup = "G1"

[[surveys]]
id = "weekly"
audience = ["leader", "guest"]
cadence = "0 25 * * MON"
every_weeks = 0
window_hours = 10
remind_after_hours = 12
anonymity = "public"

[[surveys.questions]]
key = "q"
kind = "choice"
prompt = "Pick"
options = ["a", "a", " "]

[[surveys.questions]]
key = "q"
kind = "poll"
options = ["x"]

[[surveys]]
id = "weekly"
audience = []
cadence = "0 9 * *"

[digest]
cadence = "0 16 * * FUNDAY"
chart = true
"#;
        let expected = [
            "p.toml: colour: unknown key",
            "p.toml: id: 'Bad Id' must be 1-64 characters of a-z, 0-9, '-' or '_'",
            "p.toml: name: is required",
            "p.toml: timezone: 'Mars/Olympus' is not an IANA time zone like Europe/Berlin",
            "p.toml: start_date: '2027-13-01' is not a date like 2027-01-04",
            "p.toml: working_days: 'FUNDAY' is not a day of the week (use MON, TUE, WED, THU, \
             FRI, SAT or SUN)",
            "p.toml: working_hours: the start must be before the end",
            "p.toml: holidays[0]: 'someday' is not a date like 2027-01-04",
            "p.toml: sponsor_channels[0]: 'X1' is not a Slack channel id",
            "p.toml: owners[0]: 'u1' is not a Slack user id",
            "p.toml: admins[1]: 'C1' is not a Slack user id",
            "p.toml: anonymity_threshold: 2 is below the anonymity floor of 3",
            "p.toml: comment_threshold: 4 is below anonymity_threshold (5); comments need at \
             least as many respondents",
            "p.toml: baseline_rounds: 99 is out of range 1..=52",
            "p.toml: on_non_working_day: 'later' is not one of next_working_day | skip",
            "p.toml: misfire: 'never' is not one of send_late | skip",
            "p.toml: out_of_office: 'maybe' is not one of wait | ignore",
            "p.toml: members[0].shoe_size: unknown key",
            "p.toml: members[0].role: 'boss' is not a role (leader | participant)",
            "p.toml: members[0].timezone: 'Nowhere' is not an IANA time zone like Europe/Berlin",
            "p.toml: members[0].working_days: working days must name at least one day, or \
             nobody could ever be asked anything",
            "p.toml: members[1].slack_id: duplicate member U0A",
            "p.toml: usergroups[0].role: is required",
            "p.toml: usergroups[0].usergroup: 'G1' is not a Slack user group id",
            "p.toml: surveys[0].audience[1]: 'guest' is not a role (leader | participant)",
            "p.toml: surveys[0].cadence: bad cron '0 25 * * MON': hour field '25' is out of \
             range 0-23",
            "p.toml: surveys[0].every_weeks: 0 is out of range 1..=52",
            "p.toml: surveys[0].remind_after_hours: 12 must be less than window_hours (10)",
            "p.toml: surveys[0].anonymity: 'public' is not one of anonymous | confidential | \
             attributed",
            "p.toml: surveys[0].questions[0].options: options must be distinct",
            "p.toml: surveys[0].questions[0].options: options must not be empty",
            "p.toml: surveys[0].questions[1].key: duplicate question key 'q'",
            "p.toml: surveys[0].questions[1].kind: unknown question kind 'poll' (scale | enps | \
             choice | yes_no | text | win)",
            "p.toml: surveys[0].questions[1].prompt: is required",
            "p.toml: surveys[0].questions[1].options: only choice questions take options",
            "p.toml: surveys[1].id: duplicate survey id 'weekly'",
            "p.toml: surveys[1].audience: must name at least one role",
            "p.toml: surveys[1].cadence: bad cron '0 9 * *': a cadence has 5 fields (minute \
             hour day-of-month month day-of-week), or 6 with a leading seconds field, but '0 9 \
             * *' has 4",
            "p.toml: surveys[1].questions: a survey needs at least one [[surveys.questions]]",
            "p.toml: digest.cadence: bad cron '0 16 * * FUNDAY': day-of-week field 'FUNDAY' is \
             not a day (0-7 or SUN-SAT)",
        ];
        assert_eq!(problems(text), expected);
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let text = r#"
id = "pilot"
name = "Pilot"
timezone = "Europe/Berlin"
start_date = "2027-01-04"

[[surveys]]
id = "weekly"
cadence = "0 10 * * MON"

[[surveys.questions]]
key = "value"
kind = "text"
prompt = "Anything?"
"#;
        let p = parse_program(Path::new("p.toml"), text).expect("valid");
        assert_eq!(p.working_days, WorkingDays::mon_to_fri());
        assert_eq!(p.working_hours.0.to_string(), "09:00:00");
        assert_eq!(p.working_hours.1.to_string(), "18:00:00");
        assert_eq!((p.anonymity_threshold, p.comment_threshold), (5, 5));
        assert_eq!(p.baseline_rounds, 2);
        assert_eq!(p.on_non_working_day, NonWorkingDayPolicy::NextWorkingDay);
        assert_eq!(p.misfire, MisfirePolicy::SendLate);
        assert_eq!(p.out_of_office, OutOfOfficePolicy::Wait);
        assert_eq!(p.digest.cadence.source(), "0 16 * * FRI");
        assert!(p.digest.chart);
        let s = &p.surveys[0];
        assert_eq!(s.name, "Pulse");
        assert_eq!(s.audience, [Role::Leader, Role::Participant]);
        assert_eq!((s.every_weeks, s.window_hours), (1, 48));
        assert_eq!(s.remind_after_hours, None);
        assert_eq!(s.anonymity, Anonymity::Anonymous);
        assert!(!s.questions[0].required, "text questions are optional");
    }

    #[test]
    fn question_keys_that_would_break_slack_ids_are_refused() {
        let long = "k".repeat(65);
        let text = format!(
            r#"
id = "pilot"
name = "Pilot"
timezone = "Europe/Berlin"
start_date = "2027-01-04"

[[surveys]]
id = "weekly"
cadence = "0 10 * * MON"

[[surveys.questions]]
key = "all"
kind = "text"
prompt = "A"

[[surveys.questions]]
key = "change"
kind = "text"
prompt = "B"

[[surveys.questions]]
key = "team:mood"
kind = "text"
prompt = "C"

[[surveys.questions]]
key = "{long}"
kind = "text"
prompt = "D"

[[surveys.questions]]
key = "{}"
kind = "text"
prompt = "E"
"#,
            "k".repeat(64)
        );
        let slug = "must be 1-64 characters of a-z, 0-9, '-' or '_'";
        assert_eq!(
            problems(&text),
            [
                "p.toml: surveys[0].questions[0].key: 'all' is reserved (all, change): choose \
                 another key"
                    .to_string(),
                "p.toml: surveys[0].questions[1].key: 'change' is reserved (all, change): choose \
                 another key"
                    .to_string(),
                format!("p.toml: surveys[0].questions[2].key: 'team:mood' {slug}"),
                format!("p.toml: surveys[0].questions[3].key: '{long}' {slug}"),
            ]
        );
    }
}
