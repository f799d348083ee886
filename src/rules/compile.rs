//! Compiles one Ion element into the expression tree of `rules` (feature-flags.md §4.1): operator
//! lookup, binding arguments by name or position, typing literals, building the regex and
//! hashing the split seed. Pure; used only by `rules`.

use regex_lite::RegexBuilder;
use sha2::{Digest, Sha256};

use super::{
    Comparison, Expr, Literal, Number, Operand, RuleError, Split, TextTest, MAX_PATTERN_BYTES,
    MAX_RULE_DEPTH,
};
use crate::ion::{Element, Value};

/// Every operator name, so that an [`Expr`] and its errors can hold `&'static str`.
const OPERATORS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "begins_with",
    "ends_with",
    "contains",
    "in",
    "matches",
    "exists",
    "split",
];

/// Compiled patterns are capped at 1 MiB: with the 1 KiB pattern cap this only stops counted
/// repetitions such as `a{1000}{1000}` from building a huge program.
const MAX_REGEX_PROGRAM_BYTES: usize = 1 << 20;

pub(super) fn expression(element: &Element, flag_key: &str) -> Result<Expr, RuleError> {
    compile_expression(element, flag_key, 1)
}

fn compile_expression(element: &Element, flag_key: &str, depth: usize) -> Result<Expr, RuleError> {
    if depth > MAX_RULE_DEPTH {
        return Err(RuleError::TooDeep);
    }
    if let Some(name) = element.annotations.first() {
        return Err(RuleError::NotAnExpression {
            found: format!("a value annotated {name}::"),
        });
    }
    let items = match &element.value {
        Value::SExp(items) => items,
        Value::TooDeep => return Err(RuleError::TooDeep),
        other => {
            return Err(RuleError::NotAnExpression {
                found: describe(other),
            })
        }
    };
    let Some((head, operands)) = items.split_first() else {
        return Err(RuleError::EmptyExpression);
    };
    let operator = match &head.value {
        Value::Symbol(name) if head.annotations.is_empty() => OPERATORS
            .iter()
            .find(|known| **known == name.as_str())
            .ok_or_else(|| RuleError::UnknownOperator(name.clone()))?,
        other => return Err(RuleError::UnknownOperator(describe(other))),
    };

    match *operator {
        "and" | "or" => {
            if operands.len() < 2 {
                let expected = "two or more expressions";
                return Err(RuleError::ArgumentCount {
                    operator,
                    expected,
                    found: operands.len(),
                });
            }
            let parts = operands
                .iter()
                .map(|operand| compile_expression(operand, flag_key, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if *operator == "and" {
                Expr::All(parts)
            } else {
                Expr::Any(parts)
            })
        }
        "not" => {
            let [inner] = positional(operator, operands, "one expression")?;
            Ok(Expr::Not(Box::new(compile_expression(
                inner,
                flag_key,
                depth + 1,
            )?)))
        }
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" => {
            let [left, right] = positional(operator, operands, "two operands")?;
            let comparison = match *operator {
                "eq" => Comparison::Equal,
                "ne" => Comparison::NotEqual,
                "gt" => Comparison::Greater,
                "gte" => Comparison::GreaterOrEqual,
                "lt" => Comparison::Less,
                _ => Comparison::LessOrEqual,
            };
            Ok(Expr::Compare(
                comparison,
                operand(operator, left)?,
                operand(operator, right)?,
            ))
        }
        "begins_with" | "ends_with" | "contains" => {
            let [haystack, needle] = positional(operator, operands, "two operands")?;
            let test = match *operator {
                "begins_with" => TextTest::BeginsWith,
                "ends_with" => TextTest::EndsWith,
                _ => TextTest::Contains,
            };
            Ok(Expr::Text(
                test,
                text_operand(operator, haystack)?,
                text_operand(operator, needle)?,
            ))
        }
        "in" => {
            let [value, list] = positional(operator, operands, "two operands")?;
            let Value::List(items) = &list.value else {
                let expected = "a list such as [\"a\", \"b\"] as its second operand";
                return Err(invalid(operator, expected, &list.value));
            };
            if depth + 1 > MAX_RULE_DEPTH {
                return Err(RuleError::TooDeep);
            }
            let items = items
                .iter()
                .map(|item| operand(operator, item))
                .collect::<Result<_, _>>()?;
            Ok(Expr::In(operand(operator, value)?, items))
        }
        "matches" => {
            let [input, pattern] = named(
                operator,
                operands,
                ["in", "pattern"],
                2,
                "in:: and pattern::",
            )?;
            let Some(input) = input else {
                return Err(RuleError::MissingArgument {
                    operator,
                    name: "in",
                });
            };
            let Some(pattern) = pattern else {
                return Err(RuleError::MissingArgument {
                    operator,
                    name: "pattern",
                });
            };
            Ok(Expr::Matches(
                text_operand(operator, input)?,
                regex(&pattern.value)?,
            ))
        }
        "exists" => {
            let [Some(key)] = named(operator, operands, ["key"], 1, "key::")? else {
                return Err(RuleError::MissingArgument {
                    operator,
                    name: "key",
                });
            };
            match &key.value {
                Value::String(key) => Ok(Expr::Exists(key.clone())),
                Value::Symbol(name) => match name.strip_prefix('$') {
                    Some(key) if !key.is_empty() => Ok(Expr::Exists(key.to_string())),
                    Some(_) => Err(invalid(
                        operator,
                        "a key such as key::\"country\"",
                        &key.value,
                    )),
                    None => Ok(Expr::Exists(name.clone())),
                },
                other => Err(invalid(operator, "a key such as key::\"country\"", other)),
            }
        }
        _ => {
            let accepted = "pct::, by:: and seed::";
            let [pct, by, seed] = named(operator, operands, ["pct", "by", "seed"], 2, accepted)?;
            let Some(pct) = pct else {
                return Err(RuleError::MissingArgument {
                    operator,
                    name: "pct",
                });
            };
            let Some(by) = by else {
                return Err(RuleError::MissingArgument {
                    operator,
                    name: "by",
                });
            };
            let seed = match seed.map(|s| &s.value) {
                None => flag_key,
                Some(Value::String(seed)) => seed.as_str(),
                Some(other) => {
                    return Err(invalid(
                        operator,
                        "a string seed such as seed::\"2025.01\"",
                        other,
                    ))
                }
            };
            // §4.3: the hash input is S ‖ 0x1F ‖ value; the S ‖ 0x1F part is the same for every
            // request, so it is absorbed once here and the state cloned per evaluation.
            let mut seeded_hasher = Sha256::new();
            seeded_hasher.update(seed.as_bytes());
            seeded_hasher.update([0x1F]);
            Ok(Expr::Split(Split {
                threshold: split_threshold(&pct.value)?,
                by: text_operand(operator, by)?,
                seeded_hasher,
            }))
        }
    }
}

/// Takes exactly `N` unnamed operands.
fn positional<'e, const N: usize>(
    operator: &'static str,
    operands: &'e [Element],
    expected: &'static str,
) -> Result<[&'e Element; N], RuleError> {
    if let Some(name) = operands.iter().find_map(|o| o.annotations.first()) {
        return Err(RuleError::NamedArgumentNotAccepted {
            operator,
            name: name.clone(),
        });
    }
    let refs: Vec<&Element> = operands.iter().collect();
    refs.try_into().map_err(|_| RuleError::ArgumentCount {
        operator,
        expected,
        found: operands.len(),
    })
}

/// Binds operands to `names`: `name::value` by name in any order, unnamed ones to the first
/// free names in order. The first `required` names must be bound.
fn named<'e, const N: usize>(
    operator: &'static str,
    operands: &'e [Element],
    names: [&'static str; N],
    required: usize,
    accepted: &'static str,
) -> Result<[Option<&'e Element>; N], RuleError> {
    let mut slots: [Option<&Element>; N] = [None; N];
    for operand in operands {
        let index = match operand.annotations.as_slice() {
            [] => slots
                .iter()
                .position(Option::is_none)
                .ok_or(RuleError::ArgumentCount {
                    operator,
                    expected: accepted,
                    found: operands.len(),
                })?,
            [name] => {
                let index = names
                    .iter()
                    .position(|known| *known == name.as_str())
                    .ok_or_else(|| RuleError::UnknownArgument {
                        operator,
                        name: name.clone(),
                        accepted,
                    })?;
                if slots[index].is_some() {
                    return Err(RuleError::DuplicateArgument {
                        operator,
                        name: names[index],
                    });
                }
                index
            }
            [first, second, ..] => {
                let name = format!("{first}::{second}");
                return Err(RuleError::UnknownArgument {
                    operator,
                    name,
                    accepted,
                });
            }
        };
        slots[index] = Some(operand);
    }
    if let Some(index) = (0..required.min(N)).find(|&i| slots[i].is_none()) {
        return Err(RuleError::MissingArgument {
            operator,
            name: names[index],
        });
    }
    Ok(slots)
}

/// A context reference `$key` or a literal (feature-flags.md §4: operands).
fn operand(operator: &'static str, element: &Element) -> Result<Operand, RuleError> {
    let literal = match &element.value {
        Value::Symbol(name) if name.len() > 1 && name.starts_with('$') => {
            return Ok(Operand::Reference(name[1..].to_string()));
        }
        Value::String(text) => Literal::Text(text.clone()),
        Value::Int(int) => Literal::Number(Number::Int(*int)),
        Value::Decimal(decimal) => Literal::Number(Number::Float(decimal.to_f64())),
        Value::Float(float) => Literal::Number(Number::Float(*float)),
        Value::Timestamp(timestamp) => Literal::Timestamp(*timestamp),
        Value::Bool(value) => Literal::Bool(*value),
        Value::Null => Literal::Null,
        other => {
            let expected = "a context reference such as $key or a literal";
            return Err(invalid(operator, expected, other));
        }
    };
    Ok(Operand::Literal(literal))
}

fn text_operand(operator: &'static str, element: &Element) -> Result<Operand, RuleError> {
    match operand(operator, element)? {
        Operand::Literal(Literal::Number(_) | Literal::Timestamp(_) | Literal::Bool(_))
        | Operand::Literal(Literal::Null) => {
            let expected = "a context reference such as $key or a string";
            Err(invalid(operator, expected, &element.value))
        }
        text => Ok(text),
    }
}

fn regex(pattern: &Value) -> Result<regex_lite::Regex, RuleError> {
    let Value::String(pattern) = pattern else {
        return Err(invalid(
            "matches",
            "a string pattern such as pattern::\"^a.*z$\"",
            pattern,
        ));
    };
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(RuleError::PatternTooLong {
            bytes: pattern.len(),
        });
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_PROGRAM_BYTES)
        .nest_limit(u32::try_from(MAX_RULE_DEPTH).unwrap_or(u32::MAX))
        .build()
        .map_err(|error| RuleError::InvalidPattern(error.to_string()))
}

/// `pct × 100` rounded up to a whole bucket, exactly for integers and decimals (§4.2: 0 to 100).
fn split_threshold(pct: &Value) -> Result<u32, RuleError> {
    let out_of_range = || RuleError::PercentOutOfRange(describe(pct));
    let hundredths: i128 = match pct {
        Value::Int(int) => i128::from(*int).checked_mul(100).ok_or_else(out_of_range)?,
        Value::Decimal(decimal) => {
            // pct × 100 = coefficient × 10^(exponent + 2).
            let scale = i64::from(decimal.exponent) + 2;
            if decimal.coefficient == 0 {
                0
            } else if scale >= 0 {
                let factor = u32::try_from(scale)
                    .ok()
                    .and_then(|s| 10i128.checked_pow(s));
                factor
                    .and_then(|f| decimal.coefficient.checked_mul(f))
                    .ok_or_else(out_of_range)?
            } else {
                // Below 10^-38 of a bucket every nonzero coefficient rounds up to one bucket.
                let divisor = u32::try_from(-scale)
                    .ok()
                    .and_then(|s| 10i128.checked_pow(s));
                match divisor {
                    Some(divisor) => {
                        let quotient = decimal.coefficient.div_euclid(divisor);
                        quotient + i128::from(decimal.coefficient.rem_euclid(divisor) != 0)
                    }
                    None => decimal.coefficient.signum(),
                }
            }
        }
        Value::Float(float) if (0.0..=100.0).contains(float) => (float * 100.0).ceil() as i128,
        Value::Float(_) => return Err(out_of_range()),
        other => return Err(invalid("split", "a number from 0 to 100 as pct::", other)),
    };
    match u32::try_from(hundredths) {
        Ok(threshold) if threshold <= 10_000 && !is_negative(pct) => Ok(threshold),
        _ => Err(out_of_range()),
    }
}

fn is_negative(value: &Value) -> bool {
    match value {
        Value::Int(int) => *int < 0,
        Value::Decimal(decimal) => decimal.coefficient < 0,
        Value::Float(float) => *float < 0.0,
        _ => false,
    }
}

/// An operand of the wrong kind; one the reader skipped as too deep is reported as such.
fn invalid(operator: &'static str, expected: &'static str, found: &Value) -> RuleError {
    match found {
        Value::TooDeep => RuleError::TooDeep,
        _ => RuleError::InvalidOperand {
            operator,
            expected,
            found: describe(found),
        },
    }
}

/// Names a value for an error message, quoting at most 40 characters of any text.
fn describe(value: &Value) -> String {
    let short = |text: &str| match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(value) => value.to_string(),
        Value::Int(int) => int.to_string(),
        Value::Decimal(decimal) => decimal.to_f64().to_string(),
        Value::Float(float) => float.to_string(),
        Value::Timestamp(_) => "a timestamp".to_string(),
        Value::String(text) => format!("the string {:?}", short(text)),
        Value::Symbol(text) => format!("the symbol {}", short(text)),
        Value::List(_) => "a list".to_string(),
        Value::SExp(_) => "an expression".to_string(),
        Value::Struct(_) => "a struct".to_string(),
        Value::TooDeep => "a value nested too deep".to_string(),
    }
}
