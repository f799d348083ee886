//! The variant rule language of feature-flags.md §4: compiles each rule once per configuration
//! version into a [`Rule`] and evaluates it against a request's [`Context`].
//! Pure: no I/O and no logging; a rule that cannot be compiled is never true and exposes its
//! [`RuleError`] so that `flags` (its only caller) can report it once. Reads syntax via `ion`.

mod compile;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use regex_lite::Regex;
use sha2::{Digest, Sha256};

use crate::ion::{self, IonError, Timestamp};

/// Rules nest at most this deep (feature-flags.md §4.2); the top s-expression is level 1.
pub const MAX_RULE_DEPTH: usize = 64;

/// Longest rule text in bytes (feature-flags.md §4.2: 16 KiB).
pub const MAX_RULE_BYTES: usize = 16 * 1024;

/// Longest `matches` pattern in bytes. Our own bound, not AWS's: regex-lite runs in time linear
/// in pattern × input, so capping the pattern caps the cost of every request.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// The request's evaluation context: string keys to string values, typed only when a rule
/// compares them (feature-flags.md §3, §4.2). Keys are case-sensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: HashMap<String, String>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`; a repeated key keeps its last value (feature-flags.md §3).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Context {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut context = Self::new();
        for (key, value) in pairs {
            context.insert(key, value);
        }
        context
    }
}

/// A compiled rule. Compiling does all parsing, typing of literals, regex building and seed
/// hashing, so [`Rule::evaluate`] only looks up context values and compares.
#[derive(Debug, Clone)]
pub struct Rule {
    compiled: Result<Expr, RuleError>,
}

impl Rule {
    /// Compiles rule text such as `(eq $tier "gold")`, as found in deployment-time JSON.
    /// `flag_key` is the default `split` seed (feature-flags.md §4.3).
    pub fn parse(text: &str, flag_key: &str) -> Rule {
        if text.len() > MAX_RULE_BYTES {
            return Rule {
                compiled: Err(RuleError::TooLong { bytes: text.len() }),
            };
        }
        let compiled = ion::parse_single(text, MAX_RULE_DEPTH)
            .map_err(RuleError::Syntax)
            .and_then(|element| compile::expression(&element, flag_key));
        Rule { compiled }
    }

    /// Compiles a rule already read as part of an Ion document. Its span gives its text length;
    /// anything the document reader skipped as too deep makes the rule [`RuleError::TooDeep`].
    pub fn from_element(element: &ion::Element, flag_key: &str) -> Rule {
        let bytes = element.span.len();
        let compiled = if bytes > MAX_RULE_BYTES {
            Err(RuleError::TooLong { bytes })
        } else {
            compile::expression(element, flag_key)
        };
        Rule { compiled }
    }

    /// True when the rule holds for `context`. A rule that failed to compile is never true.
    pub fn evaluate(&self, context: &Context) -> bool {
        self.compiled.as_ref().is_ok_and(|expr| expr.holds(context))
    }

    /// Why the rule can never be true, for the caller's one warning per version.
    pub fn error(&self) -> Option<&RuleError> {
        self.compiled.as_ref().err()
    }
}

/// Why a rule was compiled to "never true" (feature-flags.md §4.2).
#[derive(Debug, Clone, PartialEq)]
pub enum RuleError {
    Syntax(IonError),
    TooLong {
        bytes: usize,
    },
    TooDeep,
    NotAnExpression {
        found: String,
    },
    EmptyExpression,
    UnknownOperator(String),
    ArgumentCount {
        operator: &'static str,
        expected: &'static str,
        found: usize,
    },
    UnknownArgument {
        operator: &'static str,
        name: String,
        accepted: &'static str,
    },
    DuplicateArgument {
        operator: &'static str,
        name: &'static str,
    },
    MissingArgument {
        operator: &'static str,
        name: &'static str,
    },
    NamedArgumentNotAccepted {
        operator: &'static str,
        name: String,
    },
    InvalidOperand {
        operator: &'static str,
        expected: &'static str,
        found: String,
    },
    PercentOutOfRange(String),
    PatternTooLong {
        bytes: usize,
    },
    InvalidPattern(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(error) => write!(f, "rule is not valid Ion: {error}"),
            Self::TooLong { bytes } => {
                write!(
                    f,
                    "rule is {bytes} bytes long; the limit is {MAX_RULE_BYTES}"
                )
            }
            Self::TooDeep => write!(f, "rule nests deeper than {MAX_RULE_DEPTH} levels"),
            Self::NotAnExpression { found } => write!(
                f,
                "expected an expression such as (eq $key \"value\"), found {found}"
            ),
            Self::EmptyExpression => f.write_str("empty expression (); write (operator operand…)"),
            Self::UnknownOperator(name) => write!(
                f,
                "unknown operator {name:?}; use eq, ne, gt, gte, lt, lte, and, or, not, \
                 begins_with, ends_with, contains, in, matches, exists or split"
            ),
            Self::ArgumentCount {
                operator,
                expected,
                found,
            } => {
                write!(f, "{operator} takes {expected}, found {found}")
            }
            Self::UnknownArgument {
                operator,
                name,
                accepted,
            } => {
                write!(
                    f,
                    "{operator} has no argument {name:?}; it accepts {accepted}"
                )
            }
            Self::DuplicateArgument { operator, name } => {
                write!(f, "{operator} is given {name} more than once")
            }
            Self::MissingArgument { operator, name } => {
                write!(f, "{operator} needs the argument {name}::")
            }
            Self::NamedArgumentNotAccepted { operator, name } => write!(
                f,
                "{operator} takes no named arguments, found {name}::; write its operands in order"
            ),
            Self::InvalidOperand {
                operator,
                expected,
                found,
            } => {
                write!(f, "{operator} expects {expected}, found {found}")
            }
            Self::PercentOutOfRange(shown) => {
                write!(
                    f,
                    "split pct is {shown}; give a number from 0 to 100, such as 10 or 7.5"
                )
            }
            Self::PatternTooLong { bytes } => write!(
                f,
                "matches pattern is {bytes} bytes long; the limit is {MAX_PATTERN_BYTES}"
            ),
            Self::InvalidPattern(reason) => write!(f, "matches pattern is not valid: {reason}"),
        }
    }
}

impl std::error::Error for RuleError {}

/// A compiled expression. Depth is bounded by [`MAX_RULE_DEPTH`], so evaluation may recurse.
#[derive(Debug, Clone)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Comparison, Operand, Operand),
    Text(TextTest, Operand, Operand),
    In(Operand, Vec<Operand>),
    Matches(Operand, Regex),
    Exists(String),
    Split(Split),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

#[derive(Debug, Clone, Copy)]
enum TextTest {
    BeginsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `$key`: the context value, or nothing when the key is missing.
    Reference(String),
    Literal(Literal),
}

#[derive(Debug, Clone)]
enum Literal {
    Number(Number),
    Timestamp(Timestamp),
    Bool(bool),
    Text(String),
    Null,
}

#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

/// `(split pct::P by::V seed::S)` with the hash of `S ‖ 0x1F` computed once (§4.3).
#[derive(Clone)]
struct Split {
    /// `pct × 100` rounded up: `bucket < pct × 100` holds exactly when `bucket < threshold`.
    threshold: u32,
    by: Operand,
    seeded_hasher: Sha256,
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split")
            .field("threshold", &self.threshold)
            .field("by", &self.by)
            .finish()
    }
}

/// How two typed values relate: ordered kinds (numbers, timestamps, strings) or equality only
/// (booleans).
enum Relation {
    Ordered(Ordering),
    Equality(bool),
}

impl Expr {
    fn holds(&self, context: &Context) -> bool {
        match self {
            Expr::All(parts) => parts.iter().all(|part| part.holds(context)),
            Expr::Any(parts) => parts.iter().any(|part| part.holds(context)),
            Expr::Not(inner) => !inner.holds(context),
            Expr::Compare(comparison, left, right) => {
                let Some(relation) = relate(left, right, context) else {
                    // Missing key or a value that doesn't parse: false, even under `ne` (§4.2).
                    return false;
                };
                match (comparison, relation) {
                    (Comparison::Equal, Relation::Ordered(order)) => order.is_eq(),
                    (Comparison::Equal, Relation::Equality(equal)) => equal,
                    (Comparison::NotEqual, Relation::Ordered(order)) => order.is_ne(),
                    (Comparison::NotEqual, Relation::Equality(equal)) => !equal,
                    (Comparison::Greater, Relation::Ordered(order)) => order.is_gt(),
                    (Comparison::GreaterOrEqual, Relation::Ordered(order)) => order.is_ge(),
                    (Comparison::Less, Relation::Ordered(order)) => order.is_lt(),
                    (Comparison::LessOrEqual, Relation::Ordered(order)) => order.is_le(),
                    (_, Relation::Equality(_)) => false,
                }
            }
            Expr::Text(test, haystack, needle) => {
                let (Some(haystack), Some(needle)) =
                    (text_of(haystack, context), text_of(needle, context))
                else {
                    return false;
                };
                match test {
                    TextTest::BeginsWith => haystack.starts_with(needle),
                    TextTest::EndsWith => haystack.ends_with(needle),
                    TextTest::Contains => haystack.contains(needle),
                }
            }
            Expr::In(value, list) => list.iter().any(|item| {
                matches!(
                    relate(value, item, context),
                    Some(Relation::Ordered(Ordering::Equal) | Relation::Equality(true))
                )
            }),
            Expr::Matches(input, regex) => {
                text_of(input, context).is_some_and(|t| regex.is_match(t))
            }
            Expr::Exists(key) => context.value(key).is_some(),
            Expr::Split(split) => text_of(&split.by, context).is_some_and(|value| {
                let mut hasher = split.seeded_hasher.clone();
                hasher.update(value.as_bytes());
                let digest = hasher.finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                u64::from_be_bytes(first) % 10_000 < u64::from(split.threshold)
            }),
        }
    }
}

/// The text an operand stands for: a context value or a string literal. Compilation only lets
/// string literals and references reach text tests, so other literals never occur here.
fn text_of<'a>(operand: &'a Operand, context: &'a Context) -> Option<&'a str> {
    match operand {
        Operand::Reference(key) => context.value(key),
        Operand::Literal(Literal::Text(text)) => Some(text),
        Operand::Literal(_) => None,
    }
}

/// Types the context side by the literal it meets (§4.2) and relates the two. `None` means the
/// comparison is false whatever the operator: a key is missing, a value doesn't parse as the
/// literal's type, or the kinds differ.
fn relate(left: &Operand, right: &Operand, context: &Context) -> Option<Relation> {
    match (left, right) {
        (Operand::Reference(a), Operand::Reference(b)) => {
            Some(Relation::Ordered(context.value(a)?.cmp(context.value(b)?)))
        }
        (Operand::Reference(key), Operand::Literal(literal)) => {
            relate_text(context.value(key)?, literal)
        }
        (Operand::Literal(literal), Operand::Reference(key)) => {
            relate_text(context.value(key)?, literal).map(Relation::reverse)
        }
        (Operand::Literal(a), Operand::Literal(b)) => relate_literals(a, b),
    }
}

fn relate_text(text: &str, literal: &Literal) -> Option<Relation> {
    let typed = match literal {
        Literal::Number(_) => Literal::Number(parse_number(text)?),
        Literal::Timestamp(_) => Literal::Timestamp(ion::parse_timestamp(text)?),
        Literal::Bool(_) => match text {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            _ => return None,
        },
        Literal::Text(literal) => return Some(Relation::Ordered(text.cmp(literal.as_str()))),
        Literal::Null => return None,
    };
    relate_literals(&typed, literal)
}

fn relate_literals(left: &Literal, right: &Literal) -> Option<Relation> {
    match (left, right) {
        (Literal::Number(a), Literal::Number(b)) => compare_numbers(*a, *b).map(Relation::Ordered),
        (Literal::Timestamp(a), Literal::Timestamp(b)) => Some(Relation::Ordered(a.cmp(b))),
        (Literal::Text(a), Literal::Text(b)) => Some(Relation::Ordered(a.cmp(b))),
        (Literal::Bool(a), Literal::Bool(b)) => Some(Relation::Equality(a == b)),
        _ => None,
    }
}

fn compare_numbers(left: Number, right: Number) -> Option<Ordering> {
    match (left, right) {
        (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
    }
}

/// A context value as a number: a 64-bit integer, else a finite float (`7`, `-3`, `7.5`, `1e3`).
fn parse_number(text: &str) -> Option<Number> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(Number::Int(int));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Number::Float)
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(int) => int as f64,
            Number::Float(float) => float,
        }
    }
}

impl Relation {
    fn reverse(self) -> Relation {
        match self {
            Relation::Ordered(order) => Relation::Ordered(order.reverse()),
            equality => equality,
        }
    }
}

#[cfg(test)]
mod tests;
