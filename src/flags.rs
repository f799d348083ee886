//! Feature-flag data (feature-flags.md §1–§3): reads a [`FlagSet`] once per configuration
//! version from basic JSON, deployment-time JSON with `_variants`, or the Ion multi-variant form,
//! and answers whole-profile and `?flag=` requests for a [`Context`] taken from `Context` headers.
//! Pure: no I/O, no statuses, no logging (`routes` maps [`FlagError`]; `cache` parses once per
//! version and logs [`FlagSet::warnings`]). Uses `rules` for variant rules and `ion` for Ion text.

mod context;

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value as Json};

use crate::ion::{self, Value as IonValue};
pub use crate::rules::Context;
use crate::rules::{Rule, MAX_RULE_DEPTH};
pub use context::{parse_context, ContextError, MAX_CONTEXT_BYTES, MAX_CONTEXT_ITEMS};

/// The answer of a variant flag when no variant applies: it has no default (a malformed flag).
const NO_VARIANT_ANSWER: &str = r#"{"enabled":false}"#;

/// The flags of one configuration version, with every rule compiled and every possible answer
/// already rendered as JSON text, so that a request only evaluates rules and joins strings.
#[derive(Debug, Clone)]
pub struct FlagSet {
    /// Sorted by key, so both input forms give byte-identical whole-profile answers.
    flags: Vec<Flag>,
    index: HashMap<String, usize>,
    has_variants: bool,
    from_values_member: bool,
    warnings: Vec<String>,
}

#[derive(Debug, Clone)]
struct Flag {
    key: String,
    /// The key as a JSON string, quotes included.
    quoted_key: String,
    kind: FlagKind,
}

#[derive(Debug, Clone)]
enum FlagKind {
    /// A basic flag: one answer whatever the context.
    Fixed(String),
    /// Variants in order; the first whose rule holds (or that has no rule) answers.
    Variants(Vec<Variant>),
}

#[derive(Debug, Clone)]
struct Variant {
    rule: Option<Rule>,
    answer: String,
}

/// Why flag data could not be used or a flag could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// The data is not a feature-flag set (product.md §2.4: `flag` on non-flag data is a 400).
    NotAFlagSet { reason: String },
    /// A requested key is not in the set (product.md §2.4: 404 naming it).
    UnknownFlag(String),
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAFlagSet { reason } => write!(
                f,
                "the configuration is not a feature-flag set: {reason}; ?flag= and Context \
                 work only on AWS.AppConfig.FeatureFlags data"
            ),
            Self::UnknownFlag(key) => {
                write!(f, "flag {key:?} does not exist in this configuration")
            }
        }
    }
}

impl std::error::Error for FlagError {}

impl FlagSet {
    /// Reads flag data. `content_type` `application/ion` (any parameters) selects the Ion
    /// multi-variant form; anything else is read as JSON. Data of another shape is
    /// [`FlagError::NotAFlagSet`]; a bad rule is not an error but a warning (§4.2).
    pub fn parse(body: &[u8], content_type: &str) -> Result<FlagSet, FlagError> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/ion") {
            parse_ion(body)
        } else {
            parse_json(body)
        }
    }

    /// True when some flag has variants, so answers depend on the context.
    pub fn has_variants(&self) -> bool {
        self.has_variants
    }

    /// True when a whole-profile request should get the service's bytes unchanged
    /// (feature-flags.md §2): no variants, and the flags are the body itself rather than the
    /// `values` member of a deployment-time document.
    pub fn is_served_unchanged(&self) -> bool {
        !self.has_variants() && !self.from_values_member
    }

    /// Problems absorbed while reading (rules that are never true, missing defaults, the
    /// deployment-time wrapper), each a full sentence; log them once per version.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Flag keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| flag.key.as_str())
    }

    /// Every flag evaluated for `context`, as one JSON object keyed by flag.
    pub fn evaluate_all(&self, context: &Context) -> Vec<u8> {
        let mut out = String::from("{");
        for (position, flag) in self.flags.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            out.push_str(&flag.quoted_key);
            out.push(':');
            out.push_str(flag.answer(context));
        }
        out.push('}');
        out.into_bytes()
    }

    /// Answers `?flag=` (product.md §2.2): one key gives that flag's object; several give an
    /// object keyed by flag in the order asked (a repeated key once); none gives every flag.
    pub fn evaluate<K: AsRef<str>>(
        &self,
        keys: &[K],
        context: &Context,
    ) -> Result<Vec<u8>, FlagError> {
        let flags = keys
            .iter()
            .map(|key| {
                let key = key.as_ref();
                self.index
                    .get(key)
                    .map(|&i| &self.flags[i])
                    .ok_or_else(|| FlagError::UnknownFlag(key.to_string()))
            })
            .collect::<Result<Vec<&Flag>, FlagError>>()?;
        match flags.as_slice() {
            [] => Ok(self.evaluate_all(context)),
            [flag] => Ok(flag.answer(context).as_bytes().to_vec()),
            _ => {
                let mut out = String::from("{");
                let mut written: Vec<&str> = Vec::with_capacity(flags.len());
                for flag in flags {
                    if written.contains(&flag.key.as_str()) {
                        continue;
                    }
                    if !written.is_empty() {
                        out.push(',');
                    }
                    written.push(&flag.key);
                    out.push_str(&flag.quoted_key);
                    out.push(':');
                    out.push_str(flag.answer(context));
                }
                out.push('}');
                Ok(out.into_bytes())
            }
        }
    }
}

impl Flag {
    fn answer(&self, context: &Context) -> &str {
        match &self.kind {
            FlagKind::Fixed(answer) => answer,
            FlagKind::Variants(variants) => variants
                .iter()
                .find(|variant| {
                    variant
                        .rule
                        .as_ref()
                        .is_none_or(|rule| rule.evaluate(context))
                })
                .map_or(NO_VARIANT_ANSWER, |variant| variant.answer.as_str()),
        }
    }
}

/// Collects flags in any order, then sorts them and builds the index.
struct Builder {
    flags: Vec<Flag>,
    warnings: Vec<String>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            flags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn add(&mut self, key: &str, kind: FlagKind) {
        if let Some(existing) = self.flags.iter_mut().find(|flag| flag.key == key) {
            self.warnings.push(format!(
                "flag {key:?} is defined twice; the last one is used"
            ));
            existing.kind = kind;
            return;
        }
        let quoted_key = Json::from(key).to_string();
        self.flags.push(Flag {
            key: key.to_string(),
            quoted_key,
            kind,
        });
    }

    /// Adds a variant flag and warns about variants that can never be chosen.
    fn add_variants(&mut self, key: &str, variants: Vec<(String, Variant)>) {
        for (name, variant) in &variants {
            if let Some(error) = variant.rule.as_ref().and_then(Rule::error) {
                self.warnings.push(format!(
                    "flag {key:?} variant {name:?}: the rule is never true ({error}); requests \
                     fall through to the next variant"
                ));
            }
        }
        if let Some(position) = variants.iter().position(|(_, v)| v.rule.is_none()) {
            if position + 1 < variants.len() {
                self.warnings.push(format!(
                    "flag {key:?} variant {:?} has no rule, so the variants after it are never \
                     chosen",
                    variants[position].0
                ));
            }
        } else {
            self.warnings.push(format!(
                "flag {key:?} has no default variant (one without a rule, last); it answers \
                 {NO_VARIANT_ANSWER} when no rule holds"
            ));
        }
        self.add(
            key,
            FlagKind::Variants(variants.into_iter().map(|(_, v)| v).collect()),
        );
    }

    fn finish(mut self, from_values_member: bool) -> FlagSet {
        self.flags.sort_by(|a, b| a.key.cmp(&b.key));
        let index = self
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        let has_variants = self
            .flags
            .iter()
            .any(|f| matches!(f.kind, FlagKind::Variants(_)));
        FlagSet {
            flags: self.flags,
            index,
            has_variants,
            from_values_member,
            warnings: self.warnings,
        }
    }
}

fn not_a_flag_set(reason: String) -> FlagError {
    FlagError::NotAFlagSet { reason }
}

fn parse_json(body: &[u8]) -> Result<FlagSet, FlagError> {
    let document: Json = serde_json::from_slice(body)
        .map_err(|error| not_a_flag_set(format!("it is not JSON ({error})")))?;
    let Json::Object(mut top) = document else {
        return Err(not_a_flag_set("it is not a JSON object".to_string()));
    };
    let mut builder = Builder::new();

    // feature-flags.md §1: a deployment-time document carries its flag set under `values`.
    let is_deployment_document = ["version", "flags", "values"]
        .iter()
        .all(|k| top.contains_key(*k));
    if is_deployment_document {
        top = match top.remove("values") {
            Some(Json::Object(values)) => values,
            _ => {
                return Err(not_a_flag_set(
                    "its \"values\" member is not an object".to_string(),
                ))
            }
        };
        builder.warnings.push(
            "the flag data is a deployment-time document (top-level version, flags and values); \
             its \"values\" member is used as the flag set"
                .to_string(),
        );
    }

    for (key, flag) in &top {
        let Json::Object(flag) = flag else {
            return Err(not_a_flag_set(format!(
                "the value of {key:?} is not an object"
            )));
        };
        if let Some(variants) = flag.get("_variants") {
            let variants = json_variants(key, variants)?;
            builder.add_variants(key, variants);
        } else if flag.get("enabled").is_some_and(Json::is_boolean) {
            builder.add(key, FlagKind::Fixed(render_object(flag)));
        } else {
            let reason =
                format!("flag {key:?} has neither \"enabled\": true|false nor \"_variants\"");
            return Err(not_a_flag_set(reason));
        }
    }
    Ok(builder.finish(is_deployment_document))
}

/// Reads `_variants`: a list of `{"name","enabled","rule","attributeValues"}` (§1).
fn json_variants(key: &str, variants: &Json) -> Result<Vec<(String, Variant)>, FlagError> {
    let Json::Array(variants) = variants else {
        return Err(not_a_flag_set(format!(
            "flag {key:?} has \"_variants\" that is not a list"
        )));
    };
    let mut out = Vec::with_capacity(variants.len());
    for (position, variant) in variants.iter().enumerate() {
        let bad =
            |what: &str| not_a_flag_set(format!("flag {key:?} variant {} {what}", position + 1));
        let Json::Object(variant) = variant else {
            return Err(bad("is not an object"));
        };
        let Some(Json::String(name)) = variant.get("name") else {
            return Err(bad("has no \"name\" string"));
        };
        let enabled = match variant.get("enabled") {
            None | Some(Json::Bool(_)) => variant.get("enabled"),
            Some(_) => return Err(bad("has an \"enabled\" that is not true or false")),
        };
        let rule = match variant.get("rule") {
            None | Some(Json::Null) => None,
            Some(Json::String(text)) => Some(Rule::parse(text, key)),
            Some(_) => return Err(bad("has a \"rule\" that is not a string")),
        };
        let empty = Map::new();
        let attributes = match variant.get("attributeValues") {
            None | Some(Json::Null) => &empty,
            Some(Json::Object(attributes)) => attributes,
            Some(_) => return Err(bad("has \"attributeValues\" that is not an object")),
        };
        let name_json = Json::String(name.clone());
        let answer = render(Some(&name_json), enabled, attributes);
        out.push((name.clone(), Variant { rule, answer }));
    }
    Ok(out)
}

fn parse_ion(body: &[u8]) -> Result<FlagSet, FlagError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        not_a_flag_set(format!(
            "its Ion text is not UTF-8 (at byte {})",
            error.valid_up_to()
        ))
    })?;
    // Two levels hold a rule (the flag's list and the [rule, answer] pair), so a rule gets its
    // full 64 levels and anything deeper arrives as TooDeep for the rule to refuse.
    let elements = ion::parse_document(text, MAX_RULE_DEPTH + 2)
        .map_err(|error| not_a_flag_set(format!("its Ion text is not valid ({error})")))?;
    let mut builder = Builder::new();
    for element in &elements {
        let line = line_of(text, element.span.start);
        let [key] = element.annotations.as_slice() else {
            let reason = format!("the value on line {line} is not annotated with one flag name");
            return Err(not_a_flag_set(reason));
        };
        match &element.value {
            IonValue::String(json) => {
                let object = json_object(key, json)?;
                builder.add(key, FlagKind::Fixed(render_object(&object)));
            }
            IonValue::List(items) => {
                let mut variants = Vec::with_capacity(items.len());
                for item in items {
                    let (rule, json) = match &item.value {
                        IonValue::String(json) => (None, json),
                        IonValue::List(pair) => match pair.as_slice() {
                            [rule, answer] => match &answer.value {
                                IonValue::String(json) => {
                                    (Some(Rule::from_element(rule, key)), json)
                                }
                                _ => return Err(bad_variant(key, text, item.span.start)),
                            },
                            _ => return Err(bad_variant(key, text, item.span.start)),
                        },
                        _ => return Err(bad_variant(key, text, item.span.start)),
                    };
                    let object = json_object(key, json)?;
                    let name = match object.get("_variant") {
                        Some(Json::String(name)) => name.clone(),
                        _ => format!("#{}", variants.len() + 1),
                    };
                    variants.push((
                        name,
                        Variant {
                            rule,
                            answer: render_object(&object),
                        },
                    ));
                }
                builder.add_variants(key, variants);
            }
            _ => {
                let reason = format!(
                    "flag {key:?} on line {line} is neither a JSON string nor a list of variants"
                );
                return Err(not_a_flag_set(reason));
            }
        }
    }
    Ok(builder.finish(false))
}

fn bad_variant(key: &str, text: &str, offset: usize) -> FlagError {
    not_a_flag_set(format!(
        "flag {key:?} has a variant on line {} that is neither [rule, \"json\"] nor a \"json\" \
         default",
        line_of(text, offset)
    ))
}

fn json_object(key: &str, json: &str) -> Result<Map<String, Json>, FlagError> {
    match serde_json::from_str(json) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(not_a_flag_set(format!(
            "flag {key:?} holds JSON that is not an object"
        ))),
        Err(error) => Err(not_a_flag_set(format!(
            "flag {key:?} holds invalid JSON ({error})"
        ))),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

fn render_object(object: &Map<String, Json>) -> String {
    render(object.get("_variant"), object.get("enabled"), object)
}

/// Writes one flag answer in a fixed shape for both input forms (feature-flags.md §2):
/// `_variant` first, then `enabled`, then the other attributes sorted by name.
fn render(
    variant: Option<&Json>,
    enabled: Option<&Json>,
    attributes: &Map<String, Json>,
) -> String {
    let mut out = String::from("{");
    let mut push = |name: &str, value: &Json| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&Json::from(name).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    };
    if let Some(variant) = variant {
        push("_variant", variant);
    }
    if let Some(enabled) = enabled {
        push("enabled", enabled);
    }
    let mut rest: Vec<(&String, &Json)> = attributes.iter().collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in rest {
        if name != "_variant" && name != "enabled" {
            push(name, value);
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests;
