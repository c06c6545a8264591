//! Why a condition tree fails for a payload, in words (the rule preview, SPEC section 16): the
//! node [`Condition::first_failure`] names, what the payload holds at a failing leaf's path and
//! what the leaf wants there. Event values are quoted as JSON and clipped, never interpreted.

use serde_json::Value;

use super::{CompareOp, Condition, Node, Test, TextOp};
use crate::domain::tenant::clip;

/// How many branches of a failing `any` are described one by one.
const BRANCHES_SHOWN: usize = 3;

/// Where a condition fails and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The failing node (`conditions.any[1]`), as [`Condition::first_failure`] names it.
    pub at: &'a str,
    /// What the payload holds there and what the node wants, in words.
    pub detail: String,
}

impl Condition {
    /// The node that fails for this payload and why, or `None` if the condition holds. Names the
    /// same node as [`Condition::first_failure`].
    pub fn explain_failure(&self, payload: &Value) -> Option<Failure<'_>> {
        let node = self.failing_node(payload)?;
        Some(Failure { at: node.at.as_str(), detail: node.why_not(payload) })
    }

    /// The node [`Condition::first_failure`] names.
    fn failing_node(&self, payload: &Value) -> Option<&Condition> {
        match &self.node {
            Node::All(children) => children.written.iter().find_map(|c| c.failing_node(payload)),
            _ => self.first_failure(payload).map(|_| self),
        }
    }

    /// Why this node does not hold (it is known to fail).
    fn why_not(&self, payload: &Value) -> String {
        match &self.node {
            Node::Leaf { pointer, test, .. } => {
                let wants = test.wants();
                match payload.pointer(pointer) {
                    None => format!("{} is absent from the event; the condition wants it {wants}", shown_pointer(pointer)),
                    Some(found) => format!("{} holds {}; the condition wants it {wants}", shown_pointer(pointer), quoted(found)),
                }
            }
            Node::Any(children) => {
                let children = &children.written;
                let mut reasons: Vec<String> = children
                    .iter()
                    .take(BRANCHES_SHOWN)
                    .map(|child| match child.failing_node(payload) {
                        Some(failing) => format!("{}: {}", failing.at, failing.why_not(payload)),
                        None => format!("{} holds", child.at),
                    })
                    .collect();
                if children.len() > BRANCHES_SHOWN {
                    reasons.push(format!("and {} more", children.len() - BRANCHES_SHOWN));
                }
                format!("none of its {} alternatives holds ({})", children.len(), reasons.join("; "))
            }
            Node::Not(child) => format!("the condition it negates ({}) holds", child.at),
            // An `all` fails at one of its children, which is named instead.
            Node::All(_) => "one of its conditions does not hold".into(),
        }
    }
}

impl Test {
    /// What the leaf wants of the value at its path, in words.
    fn wants(&self) -> String {
        let list = |values: &[Value]| values.iter().map(quoted).collect::<Vec<_>>().join(", ");
        match self {
            Test::Eq(value) => format!("equal to {}", quoted(value)),
            Test::Neq(value) => format!("different from {}", quoted(value)),
            Test::In(values) => format!("one of {}", list(values)),
            Test::Nin(values) => format!("none of {}", list(values)),
            Test::Text { op, value, case_insensitive, .. } => {
                let how = match op {
                    TextOp::Prefix => "starts with",
                    TextOp::Suffix => "ends with",
                    TextOp::Contains => "contains",
                };
                let case = if *case_insensitive { " (ignoring case)" } else { "" };
                format!("to be text that {how} {}{case}", quoted(&Value::String(value.clone())))
            }
            Test::Regex { pattern, .. } => {
                format!("to be text matching the regular expression {} as a whole", quoted(&Value::String(pattern.to_string())))
            }
            Test::Compare { op, value } => {
                let how = match op {
                    CompareOp::Gt => "greater than",
                    CompareOp::Gte => "at least",
                    CompareOp::Lt => "less than",
                    CompareOp::Lte => "at most",
                };
                format!("to be a number {how} {value}")
            }
            Test::Exists(true) => "present".into(),
            Test::Exists(false) => "absent".into(),
        }
    }
}

/// A pointer as the rule wrote it; the whole payload (the empty pointer) named so.
fn shown_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "the whole payload".into()
    } else {
        pointer.to_string()
    }
}

/// A value as JSON, clipped.
fn quoted(value: &Value) -> String {
    clip(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failure(tree: Value, payload: Value) -> Option<(String, String)> {
        let condition = Condition::parse(&tree, "conditions").unwrap();
        let failure = condition.explain_failure(&payload).map(|f| (f.at.to_string(), f.detail));
        assert_eq!(failure.as_ref().map(|f| f.0.as_str()), condition.first_failure(&payload), "the same node as first_failure");
        failure
    }

    #[test]
    fn a_failing_leaf_says_what_the_payload_holds_and_what_it_wants() {
        let payload = json!({"data": {"principal": "someone@contoso.com", "threshold": 80}});
        let tree = json!({"all": [
            {"path": "/data/threshold", "op": "gte", "value": 75},
            {"path": "/data/principal", "op": "suffix", "value": "@GMAIL.com", "case_insensitive": true}]});
        assert_eq!(
            failure(tree, payload.clone()),
            Some(("conditions.all[1]".into(), r#"/data/principal holds "someone@contoso.com"; the condition wants it to be text that ends with "@GMAIL.com" (ignoring case)"#.into()))
        );
        let (at, detail) = failure(json!({"path": "/data/site_url", "op": "regex", "value": "https://.*/sites/HR"}), payload.clone()).unwrap();
        assert_eq!(at, "conditions");
        assert_eq!(detail, r#"/data/site_url is absent from the event; the condition wants it to be text matching the regular expression "https://.*/sites/HR" as a whole"#);
        let (_, detail) = failure(json!({"path": "/data/threshold", "op": "lt", "value": 50}), payload.clone()).unwrap();
        assert_eq!(detail, "/data/threshold holds 80; the condition wants it to be a number less than 50");
        let (_, detail) = failure(json!({"path": "/data/threshold", "op": "exists", "value": false}), payload.clone()).unwrap();
        assert_eq!(detail, "/data/threshold holds 80; the condition wants it absent");
        assert_eq!(failure(json!({"path": "/data/threshold", "op": "in", "value": [80, 90]}), payload), None);
    }

    #[test]
    fn an_any_lists_its_alternatives_and_a_not_names_what_held() {
        let payload = json!({"severity": "low", "tenant": {"id": "contoso"}});
        let tree = json!({"all": [{"any": [
            {"path": "/severity", "op": "in", "value": ["high", "critical"]},
            {"path": "/tenant/id", "op": "eq", "value": "fabrikam"}]}]});
        let (at, detail) = failure(tree, payload.clone()).unwrap();
        assert_eq!(at, "conditions.all[0]");
        assert_eq!(
            detail,
            r#"none of its 2 alternatives holds (conditions.all[0].any[0]: /severity holds "low"; the condition wants it one of "high", "critical"; conditions.all[0].any[1]: /tenant/id holds "contoso"; the condition wants it equal to "fabrikam")"#
        );
        let (at, detail) = failure(json!({"not": {"path": "/tenant/id", "op": "prefix", "value": "con"}}), payload).unwrap();
        assert_eq!((at.as_str(), detail.as_str()), ("conditions", "the condition it negates (conditions.not) holds"));
    }
}
