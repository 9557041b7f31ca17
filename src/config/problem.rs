//! Config problems: one [`Problem`] (position, JSON path, message), and [`Problems`], every
//! problem of one file, printed one per line as `file:line:column: path: message`. Every command
//! prints and logs problems and warnings through here, and a file that cannot be read becomes
//! [`Problems::unreadable`], so each of those lines is written in one place.

use std::fmt;

use super::Pos;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Option<Pos>,
    /// The JSON path (`servers.atlassian.issuer`), empty for the whole file.
    pub path: String,
    pub message: String,
}

/// Every problem of a file, ready to print one per line as `file:line:column: path: message`.
#[derive(Debug, Clone)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl Problem {
    /// `file:line:column: path: message`, with `tag: ` (`warning: `) before the path when given;
    /// without a position `file: …`, without a path no `path: `.
    pub fn write_line(
        &self,
        f: &mut impl fmt::Write,
        file: &str,
        tag: Option<&str>,
    ) -> fmt::Result {
        f.write_str(file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        if let Some(tag) = tag {
            write!(f, ": {tag}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

impl Problems {
    /// The file could not be read (`error` says why): one problem about the whole file.
    pub fn unreadable(file: &str, error: impl fmt::Display) -> Problems {
        Problems {
            file: file.to_owned(),
            list: vec![Problem {
                pos: None,
                path: String::new(),
                message: error.to_string(),
            }],
        }
    }

    /// The lines of a loaded config's warnings as `serve` and reloads log them:
    /// `file: path: message` (no position).
    pub fn warning_lines<'a>(
        file: &'a str,
        warnings: &'a [Problem],
    ) -> impl Iterator<Item = String> + 'a {
        warnings
            .iter()
            .map(move |w| format!("{file}: {}: {}", w.path, w.message))
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            p.write_line(f, &self.file, None)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Logs every problem of a [`Problems`] as an error, one line each. A macro, so each line keeps the
/// caller's log target (`signpost::app`, `signpost::reload`) that log filters select by.
macro_rules! log_problems {
    ($problems:expr) => {
        for line in $problems.to_string().lines() {
            tracing::error!("{line}");
        }
    };
}
pub(crate) use log_problems;

/// Logs a loaded config's warnings (`serve`, reloads), one warning line each, as
/// [`Problems::warning_lines`] writes them; a macro for the same reason as [`log_problems`].
macro_rules! log_warnings {
    ($file:expr, $warnings:expr) => {
        for line in $crate::config::Problems::warning_lines($file, $warnings) {
            tracing::warn!("{line}");
        }
    };
}
pub(crate) use log_warnings;

/// Prints a config's warnings (`check`) to stderr as `file:line:column: warning: path: message`.
pub fn print_warnings(file: &str, warnings: &[Problem]) {
    for w in warnings {
        let mut line = String::new();
        let _ = w.write_line(&mut line, file, Some("warning"));
        eprintln!("{line}");
    }
}
