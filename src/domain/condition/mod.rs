//! Rule conditions (SPEC section 16): a typed tree over an event's section 4 payload, parsed and
//! checked once when the rule is saved, then only evaluated.
//!
//! A node is `{"all":[…]}`, `{"any":[…]}`, `{"not":…}` or a leaf `{"path","op","value"}`; `path`
//! is an RFC 6901 JSON pointer into the payload as a webhook receives it. Invariants of a parsed
//! [`Condition`]: at most [`MAX_DEPTH`] levels (a leaf counts as one) and [`MAX_LEAVES`] leaves;
//! every pointer is well formed; every value has the type its operator takes (`in`/`nin` an
//! array, `exists` a boolean, `gt`… a number, the text operators a string); every regex
//! compiled, within [`MAX_REGEX_BYTES`], anchored so the whole value must match. Evaluation never
//! converts between strings and numbers; numbers compare as numbers (`1` equals `1.0`); a leaf
//! whose path is absent is false, except `exists: false`. Each node remembers where it sits in
//! the rule (`conditions.any[1]`), so a parse error and a failed match both name it.
//!
//! [`Condition::matches`] (routing's hot path) tries the children of an `all` or `any` cheapest
//! first (equality before text before regex), which decides the same as the written order since
//! every test is pure; [`Condition::first_failure`] keeps the written order, so an explanation
//! names the first failing node as the rule reads.

use regex_syntax::hir::{Hir, Look};
use serde_json::Value;

use super::Invalid;

mod affixes;
mod failure;
pub use failure::Failure;

use affixes::Affixes;

/// Most levels of a tree (a leaf counts as a level).
pub const MAX_DEPTH: usize = 8;
/// Most leaves in one rule's tree.
pub const MAX_LEAVES: usize = 64;
/// Most bytes a compiled regex may take (the `regex` crate's size limit).
pub const MAX_REGEX_BYTES: usize = 256 * 1024;
/// Longest regex pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1_000;

/// A parsed condition tree, or one node of it.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Where the node sits in the rule: `conditions`, `conditions.all[2]`.
    at: String,
    /// What evaluating the node costs, roughly ([`Test::cost`] summed over its leaves).
    cost: u32,
    node: Node,
}

/// Children in the written order, and the order [`Condition::matches`] tries them in.
#[derive(Debug, Clone)]
struct Children {
    written: Vec<Condition>,
    cheapest_first: Vec<usize>,
}

impl Children {
    fn new(written: Vec<Condition>) -> Self {
        let mut cheapest_first: Vec<usize> = (0..written.len()).collect();
        cheapest_first.sort_by_key(|&i| written[i].cost);
        Self { written, cheapest_first }
    }

    fn cost(&self) -> u32 {
        self.written.iter().map(|c| c.cost).sum()
    }

    fn by_cost(&self) -> impl Iterator<Item = &Condition> {
        self.cheapest_first.iter().map(|&i| &self.written[i])
    }
}

#[derive(Debug, Clone)]
enum Node {
    All(Children),
    Any(Children),
    Not(Box<Condition>),
    /// `tokens`: the pointer's tokens, unescaped once at parse ([`pointer_tokens`]).
    Leaf { pointer: String, tokens: Vec<String>, test: Test },
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Value),
    Neq(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    /// `value` as the rule gives it; `search` built from it once.
    Text { op: TextOp, value: String, case_insensitive: bool, search: TextSearch },
    /// `pattern` as the rule gives it; `regex` matches only the whole value; `affixes`: what a
    /// whole match must start and end with, checked before the regex.
    Regex { pattern: String, regex: regex::Regex, affixes: Affixes },
    Compare { op: CompareOp, value: serde_json::Number },
    Exists(bool),
}

/// How a text test searches: ignoring case through a regex of the escaped text (Unicode case
/// folding), `contains` with a searcher built once, or the standard library's comparisons.
#[derive(Debug, Clone)]
enum TextSearch {
    Folded(regex::Regex),
    Finder(memchr::memmem::Finder<'static>),
    Exact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextOp {
    Prefix,
    Suffix,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

const OPERATORS: &str = "`eq`, `neq`, `in`, `nin`, `prefix`, `suffix`, `contains`, `regex`, `gt`, `gte`, `lt`, `lte` or `exists`";

impl Condition {
    /// Parses the tree given as `field` (`conditions`); `Err` names the offending node or key
    /// (`conditions.all[1].op`) and what to fix.
    pub fn parse(value: &Value, field: &str) -> Result<Self, Invalid> {
        let mut leaves = 0;
        Self::parse_node(value, field, 1, &mut leaves)
    }

    fn parse_node(value: &Value, at: &str, depth: usize, leaves: &mut usize) -> Result<Self, Invalid> {
        if depth > MAX_DEPTH {
            return Err(Invalid::new(at, format!("nests too deep: a condition tree has at most {MAX_DEPTH} levels (a leaf counts as one)")));
        }
        let Some(object) = value.as_object() else {
            return Err(Invalid::new(at, "must be an object: {\"all\":[…]}, {\"any\":[…]}, {\"not\":…} or {\"path\",\"op\",\"value\"}"));
        };
        let node = if let Some(children) = object.get("all").or_else(|| object.get("any")) {
            let key = if object.contains_key("all") { "all" } else { "any" };
            only_keys(object, at, &[key])?;
            let Some(children) = children.as_array().filter(|c| !c.is_empty()) else {
                return Err(Invalid::new(format!("{at}.{key}"), "must be a non-empty array of conditions"));
            };
            let parsed = children
                .iter()
                .enumerate()
                .map(|(i, child)| Self::parse_node(child, &format!("{at}.{key}[{i}]"), depth + 1, leaves))
                .collect::<Result<Vec<_>, _>>()?;
            let children = Children::new(parsed);
            if key == "all" {
                Node::All(children)
            } else {
                Node::Any(children)
            }
        } else if let Some(child) = object.get("not") {
            only_keys(object, at, &["not"])?;
            Node::Not(Box::new(Self::parse_node(child, &format!("{at}.not"), depth + 1, leaves)?))
        } else {
            *leaves += 1;
            if *leaves > MAX_LEAVES {
                return Err(Invalid::new(at, format!("is one leaf too many: a rule's conditions have at most {MAX_LEAVES} leaves")));
            }
            parse_leaf(object, at)?
        };
        let cost = match &node {
            Node::All(children) | Node::Any(children) => children.cost(),
            Node::Not(child) => child.cost,
            Node::Leaf { test, .. } => test.cost(),
        };
        Ok(Condition { at: at.to_string(), cost, node })
    }

    /// Whether the event's payload meets the condition (the cheapest children first).
    pub fn matches(&self, payload: &Value) -> bool {
        match &self.node {
            Node::All(children) => children.by_cost().all(|c| c.matches(payload)),
            Node::Any(children) => children.by_cost().any(|c| c.matches(payload)),
            Node::Not(child) => !child.matches(payload),
            Node::Leaf { tokens, test, .. } => test.holds(find(payload, tokens)),
        }
    }

    /// Where the condition fails for this payload (`conditions.any[1]`), or `None` if it holds:
    /// the first failing leaf of an `all`; an `any` none of whose branches held, or a `not`
    /// whose branch held, is named itself.
    pub fn first_failure(&self, payload: &Value) -> Option<&str> {
        let failed = match &self.node {
            Node::All(children) => return children.written.iter().find_map(|c| c.first_failure(payload)),
            Node::Any(children) => !children.by_cost().any(|c| c.matches(payload)),
            Node::Not(child) => child.matches(payload),
            Node::Leaf { tokens, test, .. } => !test.holds(find(payload, tokens)),
        };
        failed.then_some(self.at.as_str())
    }

    /// What every match requires of the payload, for a rule index: each `eq` or `in` leaf that is
    /// the root or sits under the root `all` (or under an `all` directly within it), as its
    /// pointer and the values one of which the payload must hold there. Equality is this module's
    /// (numbers as numbers, never a string equal to a number); an `in` with no values is never
    /// met. Empty when the tree requires no equality (`any`, `not` and the other operators).
    pub fn required_equalities(&self) -> Vec<(&str, &[Value])> {
        let mut required = Vec::new();
        self.collect_required(&mut required);
        required
    }

    fn collect_required<'a>(&'a self, required: &mut Vec<(&'a str, &'a [Value])>) {
        match &self.node {
            Node::All(children) => children.written.iter().for_each(|child| child.collect_required(required)),
            Node::Leaf { pointer, test: Test::Eq(value), .. } => required.push((pointer, std::slice::from_ref(value))),
            Node::Leaf { pointer, test: Test::In(values), .. } => required.push((pointer, values)),
            _ => {}
        }
    }
}

/// Refuses keys beside a node's own.
fn only_keys(object: &serde_json::Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), Invalid> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(Invalid::new(
            format!("{at}.{}", super::tenant::clip(extra)),
            format!("is not allowed here; a node is exactly one of `all`, `any`, `not`, or a leaf of `path`, `op`, `value`{}", if allowed.len() > 1 { " (and `case_insensitive`)" } else { "" }),
        )),
        None => Ok(()),
    }
}

fn parse_leaf(object: &serde_json::Map<String, Value>, at: &str) -> Result<Node, Invalid> {
    let field = |key: &str| format!("{at}.{key}");
    let Some(path) = object.get("path") else {
        return Err(Invalid::new(field("path"), "is required: a JSON pointer into the event payload, such as /data/principal"));
    };
    let pointer = parse_pointer(path).map_err(|why| Invalid::new(field("path"), why))?;
    let Some(op) = object.get("op").and_then(Value::as_str) else {
        return Err(Invalid::new(field("op"), format!("is required: one of {OPERATORS}")));
    };
    let text_op = match op {
        "prefix" => Some(TextOp::Prefix),
        "suffix" => Some(TextOp::Suffix),
        "contains" => Some(TextOp::Contains),
        _ => None,
    };
    let mut allowed = vec!["path", "op", "value"];
    if text_op.is_some() {
        allowed.push("case_insensitive");
    }
    only_keys(object, at, &allowed)?;
    let value = object.get("value").ok_or_else(|| Invalid::new(field("value"), format!("is required for `{}`", super::tenant::clip(op))))?;
    let wrong = |what: &str| Invalid::new(field("value"), format!("must be {what} for `{op}`; got {}", clipped(value)));
    let test = match op {
        "eq" => Test::Eq(value.clone()),
        "neq" => Test::Neq(value.clone()),
        "in" | "nin" => {
            let list = value.as_array().ok_or_else(|| wrong("an array of values"))?.clone();
            if op == "in" {
                Test::In(list)
            } else {
                Test::Nin(list)
            }
        }
        "prefix" | "suffix" | "contains" => {
            let text = value.as_str().ok_or_else(|| wrong("a string"))?;
            let case_insensitive = match object.get("case_insensitive") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(Invalid::new(field("case_insensitive"), "must be true or false")),
            };
            let op = text_op.expect("a text operator");
            let search = if case_insensitive {
                // Unicode simple case folding, character by character, as a regex's `(?i)` does
                // (lower-casing both sides would miss `ΟΔΟΣ` against `σ`: final sigma).
                let escaped = regex_syntax::escape(text);
                let pattern = match op {
                    TextOp::Prefix => format!(r"\A(?i:{escaped})"),
                    TextOp::Suffix => format!(r"(?i:{escaped})\z"),
                    TextOp::Contains => format!("(?i:{escaped})"),
                };
                let folded = regex::RegexBuilder::new(&pattern)
                    .size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|_| Invalid::new(field("value"), "is too long to compare ignoring case; shorten it or drop `case_insensitive`"))?;
                TextSearch::Folded(folded)
            } else if op == TextOp::Contains {
                TextSearch::Finder(memchr::memmem::Finder::new(text.as_bytes()).into_owned())
            } else {
                TextSearch::Exact
            };
            Test::Text { op, value: text.to_string(), case_insensitive, search }
        }
        "regex" => {
            let pattern = value.as_str().ok_or_else(|| wrong("a string (a regular expression)"))?;
            if pattern.chars().count() > MAX_PATTERN_CHARS {
                return Err(Invalid::new(field("value"), format!("is a pattern of more than {MAX_PATTERN_CHARS} characters")));
            }
            // The pattern alone, then anchored as a tree (not as text: `x)|(.*` or a `(?x)`
            // comment must not reach outside the anchors).
            let parsed = regex_syntax::Parser::new().parse(pattern).map_err(|err| Invalid::new(field("value"), syntax_error(&err.to_string())))?;
            let anchored = Hir::concat(vec![Hir::look(Look::Start), parsed, Hir::look(Look::End)]);
            let regex = regex::RegexBuilder::new(&anchored.to_string())
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|err| Invalid::new(field("value"), regex_error(err)))?;
            Test::Regex { pattern: pattern.to_string(), regex, affixes: Affixes::of(&anchored) }
        }
        "gt" | "gte" | "lt" | "lte" => {
            let Value::Number(number) = value else { return Err(wrong("a number (strings are not converted)")) };
            let number = number.clone();
            let op = match op {
                "gt" => CompareOp::Gt,
                "gte" => CompareOp::Gte,
                "lt" => CompareOp::Lt,
                _ => CompareOp::Lte,
            };
            Test::Compare { op, value: number }
        }
        "exists" => Test::Exists(value.as_bool().ok_or_else(|| wrong("true or false"))?),
        other => return Err(Invalid::new(field("op"), format!("`{}` is not an operator; use {OPERATORS}", super::tenant::clip(other)))),
    };
    Ok(Node::Leaf { tokens: pointer_tokens(&pointer), pointer, test })
}

/// An RFC 6901 pointer: empty (the whole payload) or `/`-separated tokens, `~` only as `~0`
/// or `~1`.
pub fn parse_pointer(path: &Value) -> Result<String, String> {
    let Some(text) = path.as_str() else {
        return Err("must be a JSON pointer, as a string, such as /data/principal".into());
    };
    if !text.is_empty() && !text.starts_with('/') {
        return Err(format!("`{}` is not a JSON pointer: it starts with `/`, such as /data/principal", super::tenant::clip(text)));
    }
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("`{}` is not a JSON pointer: `~` is written only as `~0` (for ~) or `~1` (for /)", super::tenant::clip(text)));
        }
    }
    Ok(text.to_string())
}

/// A well-formed pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`); none for the
/// empty pointer (the whole payload).
pub fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|token| token.replace("~1", "/").replace("~0", "~")).collect()
}

/// Objects of at most this many keys are searched key by key rather than by hash.
const SCANNED_KEYS: usize = 12;

/// The value `tokens` ([`pointer_tokens`]) point at, exactly as `Value::pointer` finds it, without
/// splitting and unescaping the pointer again for every event (that allocates for every token).
pub fn find<'v>(payload: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    tokens.iter().try_fold(payload, |target, token| match target {
        // An event's objects are small: comparing a few keys costs less than hashing the token.
        Value::Object(map) if map.len() <= SCANNED_KEYS => map.iter().find_map(|(key, value)| (key == token).then_some(value)),
        Value::Object(map) => map.get(token),
        // As `Value::pointer`: a decimal index, no sign, no leading zero.
        Value::Array(list) if !token.starts_with('+') && (token == "0" || !token.starts_with('0')) => token.parse::<usize>().ok().and_then(|i| list.get(i)),
        _ => None,
    })
}

fn regex_error(err: regex::Error) -> String {
    match err {
        regex::Error::CompiledTooBig(limit) => format!("is a regular expression too large once compiled (over {limit} bytes); make it simpler"),
        other => syntax_error(&other.to_string()),
    }
}

fn syntax_error(text: &str) -> String {
    let last = text.lines().last().unwrap_or("invalid");
    format!("is not a regular expression the router reads (Rust `regex` syntax): {}", super::tenant::clip(last))
}

fn clipped(value: &Value) -> String {
    super::tenant::clip(&value.to_string()).to_string()
}

impl Test {
    /// Roughly what a test costs against a short string: a regex search dwarfs a comparison.
    fn cost(&self) -> u32 {
        match self {
            Test::Regex { .. } => 20,
            Test::Text { case_insensitive: true, .. } => 4,
            Test::Text { .. } | Test::In(_) | Test::Nin(_) => 2,
            Test::Eq(_) | Test::Neq(_) | Test::Compare { .. } | Test::Exists(_) => 1,
        }
    }

    /// Whether the value at the leaf's path (`None`: absent) passes.
    fn holds(&self, found: Option<&Value>) -> bool {
        let Some(found) = found else { return matches!(self, Test::Exists(false)) };
        match self {
            Test::Eq(value) => json_eq(found, value),
            Test::Neq(value) => !json_eq(found, value),
            Test::In(values) => values.iter().any(|v| json_eq(found, v)),
            Test::Nin(values) => !values.iter().any(|v| json_eq(found, v)),
            Test::Text { op, value, search, .. } => {
                let Some(text) = found.as_str() else { return false };
                match (search, op) {
                    (TextSearch::Folded(folded), _) => folded.is_match(text),
                    (TextSearch::Finder(finder), _) => finder.find(text.as_bytes()).is_some(),
                    (TextSearch::Exact, TextOp::Prefix) => text.starts_with(value.as_str()),
                    (TextSearch::Exact, TextOp::Suffix) => text.ends_with(value.as_str()),
                    (TextSearch::Exact, TextOp::Contains) => text.contains(value.as_str()),
                }
            }
            Test::Regex { regex, affixes, .. } => found.as_str().is_some_and(|text| affixes.admits(text) && regex.is_match(text)),
            Test::Compare { op, value } => {
                let Value::Number(number) = found else { return false };
                let Some(order) = compare_numbers(number, value) else { return false };
                match op {
                    CompareOp::Gt => order.is_gt(),
                    CompareOp::Gte => order.is_ge(),
                    CompareOp::Lt => order.is_lt(),
                    CompareOp::Lte => order.is_le(),
                }
            }
            Test::Exists(wanted) => *wanted,
        }
    }
}

/// Orders two JSON numbers exactly when both are integers (`9007199254740993` is above
/// `9007199254740992`, which a 64-bit float cannot tell), else as 64-bit floats.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    let whole = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (whole(a), whole(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality with numbers compared as numbers (`1` equals `1.0`), and never a string equal
/// to a number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w))),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
