//! The syntax errors of `ion`: where (line, column) and what, with messages that show the
//! accepted forms. Pure data; `rules` and `flags` wrap these in their own errors.

use std::fmt;

/// A syntax error, with the 1-based line and column (in characters) where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct IonError {
    pub line: usize,
    pub column: usize,
    pub kind: IonErrorKind,
}

/// What exactly is wrong at the position of an [`IonError`].
#[derive(Debug, Clone, PartialEq)]
pub enum IonErrorKind {
    UnexpectedEnd { expected: &'static str },
    UnexpectedChar { found: char, expected: &'static str },
    UnterminatedComment,
    UnterminatedString,
    NewlineInString,
    InvalidEscape(String),
    InvalidNumber(String),
    NumberOutOfRange(String),
    InvalidTimestamp(String),
    Unsupported(&'static str),
    MismatchedBracket { found: char, expected: char },
    ExpectedOneValue,
}

impl fmt::Display for IonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl std::error::Error for IonError {}

impl fmt::Display for IonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { expected } => {
                write!(f, "text ends where {expected} was expected")
            }
            Self::UnexpectedChar { found, expected } => {
                write!(f, "found {found:?} where {expected} was expected")
            }
            Self::UnterminatedComment => f.write_str("a /* comment is never closed with */"),
            Self::UnterminatedString => f.write_str("a string or quoted symbol is never closed"),
            Self::NewlineInString => f.write_str(
                "a line break inside a \"string\" or 'symbol'; use '''long strings''' or \\n",
            ),
            Self::InvalidEscape(text) => write!(
                f,
                "escape {text:?} is not valid; use \\n \\t \\\" \\' \\\\ \\xHH \\uHHHH or \
                 \\UHHHHHHHH"
            ),
            Self::InvalidNumber(text) => write!(
                f,
                "{text:?} is not a valid number; write 42, -7, 0x1F, 7.5, 75d-1 or 7.5e0"
            ),
            Self::NumberOutOfRange(text) => write!(
                f,
                "{text:?} is out of range; integers fit in 64 bits, decimals in 38 digits"
            ),
            Self::InvalidTimestamp(text) => write!(
                f,
                "{text:?} is not a valid timestamp; write 2024T, 2024-01T, 2024-01-31 or \
                 2024-01-31T10:00:00Z"
            ),
            Self::Unsupported(what) => write!(f, "{what} are not supported in flag data"),
            Self::MismatchedBracket { found, expected } => {
                write!(
                    f,
                    "found {found:?} where {expected:?} closes the open container"
                )
            }
            Self::ExpectedOneValue => f.write_str("expected exactly one value"),
        }
    }
}
