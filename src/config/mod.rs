//! Configuration: server settings (`settings`) and programs as code (`program`), both read
//! from the config folder and validated into typed values before anything else sees them.

pub mod check;
pub mod keys;
pub mod program;
pub mod settings;

pub use settings::Settings;

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one configuration file, printed as one line by `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted path of the offending field, e.g. `surveys[0].cadence`.
    pub field: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn field(file: &Path, field: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn io(file: &Path, err: &std::io::Error) -> Self {
        Self::file(file, format!("cannot read: {err}"))
    }

    /// A TOML syntax or type error, located by line.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        Self {
            file: file.to_path_buf(),
            line,
            field: None,
            message: err.message().trim().replace('\n', " "),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Several configuration problems at once (check-config reports them all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}
