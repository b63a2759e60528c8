//! Findings about an archive, each with a level: errors make `verify` fail and writers refuse,
//! warnings are reported and tolerated.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// One finding about an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub level: Level,
    pub message: String,
}

impl Problem {
    pub fn error(message: impl Into<String>) -> Problem {
        Problem {
            level: Level::Error,
            message: message.into(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Problem {
        Problem {
            level: Level::Warning,
            message: message.into(),
        }
    }
}
