//! The condition tree against a table of payloads, malformed trees and the limits.

use serde_json::json;

use super::*;

fn payload() -> Value {
    json!({
        "event": "permission.external_share_created",
        "severity": "high",
        "tenant": {"id": "contoso", "name": "Contoso"},
        "data": {
            "principal": "Guest.User@Gmail.com",
            "site_url": "https://contoso.sharepoint.com/sites/Finance",
            "file": "Q3 Résumé ✓.xlsx",
            "threshold": 90,
            "used_percent": 91.5,
            "roles": ["edit"],
            "a/b": "slash", "m~n": "tilde",
            "count_text": "90"
        }
    })
}

fn holds(leaf: Value) -> bool {
    Condition::parse(&leaf, "conditions").unwrap_or_else(|e| panic!("{leaf}: {} {}", e.field, e.message)).matches(&payload())
}

#[test]
fn each_operator_holds_or_not_as_a_table_says() {
    let cases = [
        (json!({"path": "/severity", "op": "eq", "value": "high"}), true),
        (json!({"path": "/severity", "op": "eq", "value": "HIGH"}), false),
        (json!({"path": "/severity", "op": "neq", "value": "low"}), true),
        (json!({"path": "/data/threshold", "op": "eq", "value": 90.0}), true),
        (json!({"path": "/data/threshold", "op": "eq", "value": "90"}), false),
        (json!({"path": "/data/count_text", "op": "eq", "value": 90}), false),
        (json!({"path": "/tenant/id", "op": "in", "value": ["fabrikam", "contoso"]}), true),
        (json!({"path": "/tenant/id", "op": "nin", "value": ["fabrikam", "contoso"]}), false),
        (json!({"path": "/data/roles", "op": "eq", "value": ["edit"]}), true),
        (json!({"path": "/data/principal", "op": "suffix", "value": "@gmail.com"}), false),
        (json!({"path": "/data/principal", "op": "suffix", "value": "@GMAIL.COM", "case_insensitive": true}), true),
        (json!({"path": "/data/site_url", "op": "prefix", "value": "https://contoso.sharepoint.com/sites/"}), true),
        (json!({"path": "/data/file", "op": "contains", "value": "résumé", "case_insensitive": true}), true),
        (json!({"path": "/data/file", "op": "contains", "value": "résumé"}), false),
        (json!({"path": "/data/file", "op": "contains", "value": "✓"}), true),
        (json!({"path": "/data/site_url", "op": "regex", "value": "https://[a-z]+\\.sharepoint\\.com/sites/(Finance|HR)"}), true),
        // The whole value must match.
        (json!({"path": "/data/site_url", "op": "regex", "value": "Finance"}), false),
        (json!({"path": "/data/site_url", "op": "regex", "value": ".*Finance"}), true),
        (json!({"path": "/data/used_percent", "op": "gt", "value": 90}), true),
        (json!({"path": "/data/threshold", "op": "gt", "value": 90}), false),
        (json!({"path": "/data/threshold", "op": "gte", "value": 90}), true),
        (json!({"path": "/data/threshold", "op": "lt", "value": 90.5}), true),
        (json!({"path": "/data/threshold", "op": "lte", "value": 89}), false),
        // No string-to-number conversion.
        (json!({"path": "/data/count_text", "op": "gte", "value": 1}), false),
        (json!({"path": "/data/principal", "op": "exists", "value": true}), true),
        (json!({"path": "/data/nowhere", "op": "exists", "value": false}), true),
        (json!({"path": "/data/principal", "op": "exists", "value": false}), false),
        // An absent path is false, whatever the operator, but `exists: false`.
        (json!({"path": "/data/nowhere", "op": "neq", "value": "x"}), false),
        (json!({"path": "/data/nowhere", "op": "nin", "value": ["x"]}), false),
        (json!({"path": "/data/nowhere", "op": "exists", "value": true}), false),
        // Escaped pointer tokens.
        (json!({"path": "/data/a~1b", "op": "eq", "value": "slash"}), true),
        (json!({"path": "/data/m~0n", "op": "eq", "value": "tilde"}), true),
        // A text operator on a number is false, not an error.
        (json!({"path": "/data/threshold", "op": "prefix", "value": "9"}), false),
    ];
    for (leaf, expected) in cases {
        assert_eq!(holds(leaf.clone()), expected, "{leaf}");
    }
}

#[test]
fn all_any_not_and_nesting_combine_and_name_where_they_fail() {
    let tree = json!({"all": [
        {"path": "/tenant/id", "op": "eq", "value": "contoso"},
        {"any": [
            {"path": "/data/principal", "op": "suffix", "value": "@example.com"},
            {"not": {"path": "/severity", "op": "in", "value": ["high", "critical"]}}
        ]}
    ]});
    let condition = Condition::parse(&tree, "conditions").unwrap();
    assert!(!condition.matches(&payload()));
    assert_eq!(condition.first_failure(&payload()), Some("conditions.all[1]"));
    let mut low = payload();
    low["severity"] = json!("low");
    assert!(condition.matches(&low));
    let other = json!({"all": [{"path": "/tenant/id", "op": "eq", "value": "fabrikam"}]});
    assert_eq!(Condition::parse(&other, "conditions").unwrap().first_failure(&payload()), Some("conditions.all[0]"));
    let not = json!({"not": {"path": "/severity", "op": "eq", "value": "high"}});
    assert_eq!(Condition::parse(&not, "conditions").unwrap().first_failure(&payload()), Some("conditions"));
}

#[test]
fn a_malformed_tree_is_refused_naming_the_path_in_the_rule_and_what_to_fix() {
    let leaf = |op: &str, value: Value| json!({"path": "/severity", "op": op, "value": value});
    let cases = [
        (json!({"all": [leaf("eq", json!("high")), {"path": "/severity", "op": "is", "value": 1}]}), "conditions.all[1].op", "not an operator"),
        (json!({"any": []}), "conditions.any", "non-empty"),
        (json!({"all": [{"path": "severity", "op": "eq", "value": 1}]}), "conditions.all[0].path", "starts with `/`"),
        (json!({"path": "/data/a~2", "op": "eq", "value": 1}), "conditions.path", "~0"),
        (json!({"path": 5, "op": "eq", "value": 1}), "conditions.path", "as a string"),
        (leaf("in", json!("high")), "conditions.value", "an array"),
        (leaf("gt", json!("90")), "conditions.value", "a number"),
        (leaf("exists", json!("yes")), "conditions.value", "true or false"),
        (leaf("prefix", json!(1)), "conditions.value", "a string"),
        (leaf("regex", json!("(unclosed")), "conditions.value", "regular expression"),
        (leaf("regex", json!("\\w{1000}\\w{1000}\\w{1000}")), "conditions.value", "too large"),
        (json!({"path": "/severity", "op": "eq"}), "conditions.value", "required"),
        (json!({"path": "/severity", "op": "eq", "value": 1, "case_insensitive": true}), "conditions.case_insensitive", "not allowed"),
        (json!({"path": "/severity", "op": "contains", "value": "h", "case_insensitive": "yes"}), "conditions.case_insensitive", "true or false"),
        (json!({"all": [leaf("eq", json!(1))], "any": [leaf("eq", json!(1))]}), "conditions.any", "not allowed"),
        (json!(["not", "an", "object"]), "conditions", "must be an object"),
    ];
    for (tree, field, says) in cases {
        let err = Condition::parse(&tree, "conditions").expect_err(&tree.to_string());
        assert_eq!(err.field, field, "{tree}: {}", err.message);
        assert!(err.message.contains(says), "{tree}: {}", err.message);
    }
}

#[test]
fn a_tree_is_held_to_eight_levels_and_sixty_four_leaves() {
    let mut deep = json!({"path": "/severity", "op": "eq", "value": "high"});
    for _ in 0..7 {
        deep = json!({"not": {"not": deep}})["not"].clone();
    }
    // Seven `not`s over a leaf: eight levels.
    assert!(Condition::parse(&deep, "conditions").is_ok());
    let deeper = json!({"not": deep});
    let err = Condition::parse(&deeper, "conditions").unwrap_err();
    assert!(err.message.contains("at most 8 levels"), "{} {}", err.field, err.message);
    let leaves = |n: usize| json!({"any": (0..n).map(|i| json!({"path": "/data/threshold", "op": "gte", "value": i})).collect::<Vec<_>>()});
    assert!(Condition::parse(&leaves(64), "conditions").unwrap().matches(&payload()));
    let err = Condition::parse(&leaves(65), "conditions").unwrap_err();
    assert_eq!(err.field, "conditions.any[64]");
    assert!(err.message.contains("at most 64 leaves"), "{}", err.message);
}

#[test]
fn the_equalities_every_match_requires_are_those_of_the_root_and_its_all() {
    let required = |tree: Value| {
        let condition = Condition::parse(&tree, "conditions").unwrap();
        condition.required_equalities().into_iter().map(|(p, v)| (p.to_string(), v.to_vec())).collect::<Vec<_>>()
    };
    assert_eq!(required(json!({"path": "/severity", "op": "eq", "value": "high"})), [("/severity".to_string(), vec![json!("high")])]);
    let tree = json!({"all": [
        {"path": "/data/site_url", "op": "eq", "value": "https://t/sites/a"},
        {"path": "/data/principal", "op": "regex", "value": ".*@gmail\\.com"},
        {"all": [{"path": "/data/access_level", "op": "in", "value": ["edit", "full_control"]}]},
        {"any": [{"path": "/tenant/id", "op": "eq", "value": "contoso"}, {"path": "/tenant/id", "op": "eq", "value": "fabrikam"}]},
        {"not": {"path": "/severity", "op": "eq", "value": "low"}},
        {"path": "/data/n", "op": "neq", "value": 1}
    ]});
    assert_eq!(
        required(tree),
        [("/data/site_url".to_string(), vec![json!("https://t/sites/a")]), ("/data/access_level".to_string(), vec![json!("edit"), json!("full_control")])],
        "an `any`, a `not` and the other operators require no single value"
    );
    assert!(required(json!({"any": [{"path": "/severity", "op": "eq", "value": "high"}]})).is_empty());
    assert!(required(json!({"not": {"path": "/severity", "op": "eq", "value": "high"}})).is_empty());
    // Whatever is required, a payload that meets the tree holds one of the values there.
    let tree = Condition::parse(&json!({"all": [{"path": "/data/threshold", "op": "in", "value": [90.0, "x"]}, {"path": "/severity", "op": "eq", "value": "high"}]}), "conditions").unwrap();
    assert!(tree.matches(&payload()));
    for (pointer, values) in tree.required_equalities() {
        assert!(values.iter().any(|v| json_eq(payload().pointer(pointer).unwrap(), v)), "{pointer}");
    }
}

#[test]
fn a_parsed_pointer_finds_what_serde_json_finds() {
    let payload = json!({"data": {"a/b": 1, "m~n": 2, "": 3, "list": [10, 11, 12], "0": "zero"}, "list": [{"x": 1}]});
    for pointer in [
        "", "/", "/data", "/data/a~1b", "/data/m~0n", "/data/", "/data/list/0", "/data/list/2", "/data/list/3", "/data/list/01",
        "/data/list/+1", "/data/list/-1", "/data/list/x", "/data/0", "/list/0/x", "/list/00/x", "/missing/deeper", "/data/a~1b/c",
    ] {
        assert_eq!(find(&payload, &pointer_tokens(pointer)), payload.pointer(pointer), "{pointer}");
    }
}

#[test]
fn trying_the_cheapest_children_first_decides_as_the_written_order() {
    // Leaves that hold and that fail, of every cost, combined in all, any and not, in both orders.
    let leaves = [
        json!({"path": "/data/principal", "op": "regex", "value": ".*@gmail\\.com"}),
        json!({"path": "/data/principal", "op": "regex", "value": "(?i).*@GMAIL\\.COM"}),
        json!({"path": "/severity", "op": "eq", "value": "high"}),
        json!({"path": "/severity", "op": "eq", "value": "low"}),
        json!({"path": "/data/site_url", "op": "contains", "value": "/sites/"}),
        json!({"path": "/data/site_url", "op": "contains", "value": "/teams/"}),
        json!({"path": "/data/file", "op": "suffix", "value": ".XLSX", "case_insensitive": true}),
        json!({"path": "/data/absent", "op": "exists", "value": false}),
    ];
    let mut checked = 0;
    for a in &leaves {
        for b in &leaves {
            for c in &leaves {
                for tree in [json!({"all": [a, b, c]}), json!({"any": [a, b, c]}), json!({"all": [a, {"any": [b, {"not": c}]}]}), json!({"any": [{"all": [c, b]}, {"not": a}]})] {
                    let condition = Condition::parse(&tree, "conditions").unwrap();
                    assert_eq!(condition.matches(&payload()), condition.first_failure(&payload()).is_none(), "{tree}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 8 * 8 * 8 * 4);
}

#[test]
fn ignoring_case_folds_each_character_as_a_regex_does() {
    let principal = |value: &str| json!({"data": {"principal": value}});
    let text = |op: &str, value: &str| Condition::parse(&json!({"path": "/data/principal", "op": op, "value": value, "case_insensitive": true}), "conditions").unwrap();
    // Lower-casing would make the final sigma of ΟΔΟΣ `ς`, never equal to `σ`.
    for (op, value, principal_text) in [("prefix", "ΑΣ", "ΑΣΤΥ@example.gr"), ("suffix", "σ", "ΟΔΟΣ"), ("suffix", "Σ", "οδος"), ("contains", "straße", "STRAßE 1"), ("prefix", "K", "\u{212A}elvin")] {
        assert!(text(op, value).matches(&principal(principal_text)), "{op} {value} on {principal_text}");
        let exact = Condition::parse(&json!({"path": "/data/principal", "op": op, "value": principal_text}), "conditions").unwrap();
        assert!(exact.matches(&principal(principal_text)));
    }
    assert!(!text("prefix", "ΑΣ", ).matches(&principal("ΤΥΑΣ")));
    assert!(!text("suffix", "com", ).matches(&principal("com.example")));
    assert!(text("contains", "a.b").matches(&principal("xA.By")) && !text("contains", "a.b").matches(&principal("xAzBy")), "the value is text, not a pattern");
}

#[test]
fn a_regex_matches_the_whole_value_whatever_the_pattern_holds() {
    let rule = |pattern: &str| Condition::parse(&json!({"path": "/data/principal", "op": "regex", "value": pattern}), "conditions");
    let principal = |value: &str| json!({"data": {"principal": value}});
    // Patterns that are not regular expressions on their own cannot reach outside the anchors.
    for broken in ["x)|(.*", "a)|(b", "admin)|(?:zzz"] {
        let err = rule(broken).expect_err(broken);
        assert_eq!(err.field, "conditions.value", "{broken}");
        assert!(err.message.contains("not a regular expression"), "{broken}: {}", err.message);
    }
    // A comment in verbose mode is the pattern's own.
    let verbose = rule("(?x) a b # the letters a and b").unwrap();
    assert!(verbose.matches(&principal("ab")) && !verbose.matches(&principal("abc")) && !verbose.matches(&principal("a b")));
    // Multi-line anchors inside the pattern do not make a line a whole value.
    let lines = rule("(?m)^admin$").unwrap();
    assert!(lines.matches(&principal("admin")) && !lines.matches(&principal("admin\nx")) && !lines.matches(&principal("x\nadmin")));
    let alternatives = rule("admin|root").unwrap();
    assert!(alternatives.matches(&principal("root")) && !alternatives.matches(&principal("administrator")) && !alternatives.matches(&principal("chroot")));
}

#[test]
fn whole_numbers_compare_exactly_beyond_what_a_float_holds() {
    let above = Condition::parse(&json!({"path": "/data/n", "op": "gt", "value": 9_007_199_254_740_992u64}), "conditions").unwrap();
    assert!(above.matches(&json!({"data": {"n": 9_007_199_254_740_993u64}})));
    assert!(!above.matches(&json!({"data": {"n": 9_007_199_254_740_992u64}})));
    let at_most = Condition::parse(&json!({"path": "/data/n", "op": "lte", "value": -1}), "conditions").unwrap();
    assert!(at_most.matches(&json!({"data": {"n": -1.0}})) && at_most.matches(&json!({"data": {"n": i64::MIN}})) && !at_most.matches(&json!({"data": {"n": u64::MAX}})));
    assert!(!at_most.matches(&json!({"data": {"n": "-5"}})), "strings are not converted");
}
