//! Config problems: one [`Problem`] (position, JSON path, message), and [`Problems`], every
//! problem of one file, printed one per line as `file:line:column: path: message`.

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

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(pos) = p.pos {
                write!(f, ":{}:{}", pos.line, pos.column)?;
            }
            if p.path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
