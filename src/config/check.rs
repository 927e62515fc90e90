//! `pulseloop check-config`: validate everything, print one line per problem.

use std::path::Path;
use std::process::ExitCode;

use super::program::load_programs;
use super::settings::Settings;

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

pub fn run(config_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> ExitCode {
    let mut problems = Vec::new();
    if let Err(message) = require_folder(config_dir) {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = Settings::load(config_dir, env) {
        problems.push(e);
    }
    let programs = match load_programs(&config_dir.join("programs")) {
        Ok(p) => p,
        Err(errors) => {
            problems.extend(errors.0);
            Vec::new()
        }
    };
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
