//! `pulseloop check-config`: validate everything, print one line per problem.

use std::path::Path;
use std::process::ExitCode;

use super::program::load_programs;
use super::settings::Settings;
use super::ConfigError;
use crate::domain::program::Program;

/// The configuration folder must exist: `check-config` and `serve` refuse a missing one
/// with this same sentence (a typo in `--config` must not start a service with no programs).
pub fn require_folder(config_dir: &Path) -> Result<(), String> {
    if config_dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{}: the configuration folder does not exist",
            config_dir.display()
        ))
    }
}

/// In OAuth-only mode there is no default installation a program could fall back to: every
/// program must say which workspace it belongs to (`team_id`), else it is an error.
pub fn programs_without_workspace(programs: &[Program]) -> Vec<ConfigError> {
    programs
        .iter()
        .filter(|p| p.team_id.is_none())
        .map(|p| {
            ConfigError::field(
                &p.file,
                "team_id",
                format!(
                    "program '{}' names no workspace: without SLACK_BOT_TOKEN (OAuth-only mode) \
                     every program must set team_id = \"T…\", the workspace it runs in",
                    p.id
                ),
            )
        })
        .collect()
}

pub fn run(config_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> ExitCode {
    let mut problems = Vec::new();
    if let Err(message) = require_folder(config_dir) {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    let settings = match Settings::load(config_dir, env) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let programs = match load_programs(&config_dir.join("programs")) {
        Ok(p) => p,
        Err(errors) => {
            problems.extend(errors.0);
            Vec::new()
        }
    };
    if settings.as_ref().is_some_and(Settings::oauth_only) {
        problems.extend(programs_without_workspace(&programs));
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "check-config: {} problem{} found in {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            config_dir.display()
        );
        return ExitCode::FAILURE;
    }
    for warning in programs.iter().flat_map(super::program::warnings) {
        eprintln!("warning: {warning}");
    }
    if let Some(settings) = &settings {
        println!("slack mode: {}", settings.slack_mode().describe());
    }
    println!(
        "check-config: {} is valid: {} program{}",
        config_dir.display(),
        programs.len(),
        if programs.len() == 1 { "" } else { "s" }
    );
    for p in &programs {
        let questions: usize = p.surveys.iter().map(|s| s.questions.len()).sum();
        println!(
            "  {} ({}): {} members{}, {} surveys, {} questions, timezone {}, k = {}",
            p.id,
            p.name,
            p.members.len(),
            if p.usergroups.is_empty() {
                String::new()
            } else {
                format!(" + {} user groups", p.usergroups.len())
            },
            p.surveys.len(),
            questions,
            p.timezone,
            p.anonymity_threshold
        );
    }
    ExitCode::SUCCESS
}
