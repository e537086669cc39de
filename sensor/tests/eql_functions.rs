//! Conformance of the EQL functions, arithmetic, expression comparisons and
//! date comparisons with Elasticsearch. Events and queries are the
//! project's own; each expected verdict states the Elasticsearch source
//! (x-pack/plugin/eql, x-pack/plugin/ql) or QA-suite fact it follows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sensor::eql::{compile_str, EqlErrorKind, JsonDocument};
use serde_json::{json, Value};

fn any(cond: &str, doc: Value) -> bool {
    let q = format!("any where {cond}");
    compile_str(&q)
        .unwrap_or_else(|e| panic!("{}", e.render("<q>", &q)))
        .matches(&JsonDocument::new(&doc))
}

fn err(cond: &str) -> EqlErrorKind {
    compile_str(&format!("any where {cond}"))
        .map(|_| ())
        .expect_err(cond)
        .kind
}

fn id(n: i64) -> Value {
    json!({"serial_event_id": n})
}

// ---- arithmetic (Arithmetics in x-pack/plugin/ql) -------------------------

#[test]
fn long_arithmetic_is_integral_and_double_arithmetic_is_ieee() {
    // Long division truncates: `x / 2 == 41` holds for 82 and 83.
    assert!(any("serial_event_id / 2 == 41", id(82)));
    assert!(any("serial_event_id / 2 == 41", id(83)));
    assert!(!any("serial_event_id / 2 == 41", id(84)));
    // A double operand makes it double division.
    assert!(any("66.0 / serial_event_id == 1", id(66)));
    assert!(!any("serial_event_id / 2.0 == 41", id(83)));
    assert!(any("serial_event_id / 2.0 == 41.5", id(83)));
    // Literal on the left, unary minus, precedence.
    assert!(any("83 - serial_event_id == 1", id(82)));
    assert!(any("1 + serial_event_id == 83", id(82)));
    assert!(any("-serial_event_id + 100 == 18", id(82)));
    assert!(any("2 * serial_event_id == 164", id(82)));
    assert!(any(
        "serial_event_id + ((1 + 3) * 2 / (3 - 1)) * 2 == 54",
        id(46)
    ));
    assert!(any("serial_event_id % 10 == 3", id(83)));
    assert!(any("-7 % 3 == -1", id(0)));
    // Functions are the same operators.
    assert!(any("modulo(11, 10) == serial_event_id", id(1)));
    assert!(any("add(serial_event_id, 1) == 2", id(1)));
    assert!(any("subtract(serial_event_id, 1) == 0", id(1)));
    assert!(any("multiply(serial_event_id, 3) == 6", id(2)));
    assert!(any("divide(serial_event_id, 2) == 3", id(7)));
    assert!(any("divide(serial_event_id, 2.0) == 3.5", id(7)));
}

#[test]
fn division_by_zero_and_overflow() {
    // Long / 0 and long % 0 throw (ArithmeticException): no match, even
    // negated (the error, not a false, decides the script).
    assert!(!any("serial_event_id / 0 == 1", id(1)));
    assert!(!any("serial_event_id % 0 == 1", id(1)));
    assert!(!any("not serial_event_id / 0 == 1", id(1)));
    // A double / 0 is Infinity; a double % 0 is NaN (Java).
    assert!(any("serial_event_id / 0.0 > 1000000", id(1)));
    assert!(!any("serial_event_id % 0.0 == 0", id(1)));
    // Exact long arithmetic (Math.addExact, multiplyExact): overflow throws.
    assert!(!any("serial_event_id + 9223372036854775807 > 0", id(1)));
    // A constant that fails fails the query at planning.
    assert_eq!(err("serial_event_id == 1 / 0"), EqlErrorKind::Syntax);
    // A missing operand is null: every comparison is false.
    assert!(!any("serial_event_id + 1 == 1", json!({})));
    assert!(!any("serial_event_id + 1 != 1", json!({})));
}

// ---- comparisons ---------------------------------------------------------

#[test]
fn literals_fields_and_expressions_on_either_side() {
    assert!(any("5 < n", json!({"n": 6})));
    assert!(!any("5 < n", json!({"n": 5})));
    assert!(any(
        "\"sh\" == process.name",
        json!({"process": {"name": "sh"}})
    ));
    assert!(any("true == b", json!({"b": true})));
    // Constants fold.
    assert!(any("1 + 1 == 2", json!({})));
    assert!(!any("1 + 1 == 3", json!({})));
    // Field-to-field: some combination of values (MultiValueAwareScriptQuery).
    let d = json!({"a": 3, "b": 3, "c": [1, 7], "s": "x", "t": "x", "u": "y"});
    assert!(any("a == b", d.clone()));
    assert!(any("a < c", d.clone()));
    assert!(any("a > c", d.clone()));
    assert!(!any("a != b", d.clone()));
    assert!(any("s == t", d.clone()));
    assert!(any("s < u", d.clone()));
    assert!(!any("s == missing", d.clone()));
    assert!(!any("s != missing", d));
    // `x == null` on an expression is IsNull.
    assert!(any("concat(a, b) == null", json!({"a": "x"})));
    assert!(!any("concat(a, b) != null", json!({"a": "x"})));
    assert!(any("concat(a, b) != null", json!({"a": "x", "b": "y"})));
}

#[test]
fn not_of_a_script_is_three_valued() {
    // ExpressionTranslators.Nots: `not <script>` is one script, so a null
    // inside stays null (false), unlike `not <query>` (must_not).
    assert!(!any("not length(a) == 3", json!({})));
    assert!(any("not a == \"abc\"", json!({})));
    // Multi-valued: some value with length != 3.
    assert!(any("not length(a) == 3", json!({"a": ["abc", "de"]})));
    assert!(!any("not a == \"abc\"", json!({"a": ["abc", "de"]})));
}

// ---- string functions ----------------------------------------------------

#[test]
fn starts_ends_contains_on_fields_are_queries() {
    let d = json!({"p": ["C:\\Windows\\cmd.exe", "x"]});
    // startsWith(field, "..") is a prefix query (literal string).
    assert!(any("startsWith(p, \"C:\\\\Win\")", d.clone()));
    assert!(!any("startsWith(p, \"c:\\\\win\")", d.clone()));
    assert!(any("startsWith~(p, \"c:\\\\win\")", d.clone()));
    assert!(any("startsWith(p, \"\")", d.clone()));
    // endsWith / stringContains are wildcard queries `*s` / `*s*`.
    assert!(any("endsWith(p, \".exe\")", d.clone()));
    assert!(!any("endsWith(p, \".EXE\")", d.clone()));
    assert!(any("endsWith~(p, \".EXE\")", d.clone()));
    assert!(any("stringContains(p, \"Windows\")", d.clone()));
    assert!(any("stringContains~(p, \"WINDOWS\")", d.clone()));
    assert!(!any("stringContains(p, \"WINDOWS\")", d.clone()));
    // ... with the string pasted in: `*` and `?` are wildcards there, `\`
    // escapes.
    assert!(any("stringContains(p, \"Win*cmd\")", d.clone()));
    assert!(any("endsWith(p, \"cmd.ex?\")", d.clone()));
    assert!(any("stringContains(p, \"\\\\\\\\Windows\")", d.clone()));
    // Case-insensitive folds ASCII only (AutomatonQueries).
    assert!(!any("startsWith~(p, \"É\")", json!({"p": "é"})));
    // Not a string: no match; missing: no match, and `not` is must_not.
    assert!(!any("startsWith(n, \"1\")", json!({"n": 1})));
    assert!(!any("startsWith(p, \"x\")", json!({})));
    assert!(any("not startsWith(p, \"x\")", json!({})));
}

#[test]
fn string_functions_in_scripts() {
    let d = json!({"s": "Hello World", "e": "", "m": ["ab", "abcd"]});
    // length: UTF-16 units (String.length); null → null.
    assert!(any("length(s) == 11", d.clone()));
    assert!(any("length(e) == 0", d.clone()));
    assert!(any("length(m) == 4", d.clone()));
    assert!(any("length(u) == 2", json!({"u": "😀"})));
    assert!(!any("length(x) >= 0", d.clone()));
    // substring: Python slices (StringUtils.substringSlice).
    assert!(any("substring(s, 6) == \"World\"", d.clone()));
    assert!(any("substring(s, -5) == \"World\"", d.clone()));
    assert!(any("substring(s, 0, 5) == \"Hello\"", d.clone()));
    assert!(any("substring(s, 0, -6) == \"Hello\"", d.clone()));
    assert!(any("substring(s, 8, 2) == \"\"", d.clone()));
    assert!(any("substring(s, 0, 100) == s", d.clone()));
    // indexOf: UTF-16 index, null when absent; `~` folds case.
    assert!(any("indexOf(s, \"o\") == 4", d.clone()));
    assert!(any("indexOf(s, \"o\", 5) == 7", d.clone()));
    assert!(any("indexOf(s, \"zz\") == null", d.clone()));
    assert!(any("indexOf(s, \"WORLD\") == null", d.clone()));
    assert!(any("indexOf~(s, \"WORLD\") == 6", d.clone()));
    // between (StringUtils.between): first left, next (or last) right.
    let b = json!({"p": "C:\\dev\\TestLogs\\something.json"});
    assert!(any(
        "between(p, \"dev\", \".json\", false) : \"\\\\TestLogs\\\\something\"",
        b.clone()
    ));
    assert!(any("between(p, \"\\\\\", \"\\\\\") == \"dev\"", b.clone()));
    assert!(any(
        "between(p, \"\\\\\", \"\\\\\", true) == \"dev\\\\TestLogs\"",
        b.clone()
    ));
    assert!(any("between(p, \"DEV\", \".json\") == \"\"", b.clone()));
    assert!(any("between~(p, \"DEV\", \".JSON\") : \"*something\"", b));
    // stringContains in a script: empty string or substring → false.
    assert!(!any("stringContains(concat(e, \"\"), \"\")", d.clone()));
    assert!(any("stringContains(concat(s, \"!\"), \"d!\")", d.clone()));
    assert!(any("startsWith(concat(s), \"Hell\")", d.clone()));
    assert!(any("endsWith~(concat(s), \"WORLD\")", d));
}

#[test]
fn concat_string_and_number() {
    let d = json!({"id": 5, "name": "wininit.exe", "op": 3, "f": 1.5, "b": true});
    // concat: any null → null (ConcatFunctionProcessor); values via toString.
    assert!(any(
        "concat(id, \"::\", name, \"::\", op) : \"5::WININIT.EXE::3\"",
        d.clone()
    ));
    assert!(any("concat(id) : \"5\"", d.clone()));
    assert!(any("concat(name, missing) == null", d.clone()));
    assert!(any("concat(name, null) == null", d.clone()));
    assert!(any("concat(f, b) == \"1.5true\"", d.clone()));
    // string: Java toString (Double.toString gives "1.0").
    assert!(any("string(id) == \"5\"", d.clone()));
    assert!(any("string(id) like \"5*\"", d.clone()));
    assert!(any("string(id) in~ (\"5\")", d.clone()));
    assert!(!any("string(id) in~ (\"5*\")", d.clone()));
    assert!(any("string(2.0) == \"2.0\"", d.clone()));
    assert!(any("string(b) : \"TRUE\"", d.clone()));
    // number (ToNumberFunctionProcessor): base 10 long else double; a base;
    // a `0x` prefix; an unparsable string is an error (no match).
    assert!(any("number(string(id)) == 5", d.clone()));
    assert!(any("number(string(id), null) == 5", d.clone()));
    assert!(any("number(\"11\", 16) == 17", d.clone()));
    assert!(any("number(\"0x11\") == 17", d.clone()));
    assert!(any("number(\"31\", 13) == 40", d.clone()));
    assert!(any("number(\"1.5\") == 1.5", d.clone()));
    assert!(!any("number(name) == 0", d.clone()));
    assert!(!any("not number(name) == 0", d));
}

#[test]
fn cidr_match() {
    let d = json!({"source": {"address": ["10.6.48.157", "fe80::1"]}, "bad": "nope"});
    // On a field: a terms query on the `ip` field with the ranges.
    assert!(any(
        "cidrMatch(source.address, \"10.6.48.157/8\")",
        d.clone()
    ));
    assert!(!any(
        "cidrMatch(source.address, \"192.168.0.0/16\")",
        d.clone()
    ));
    assert!(any(
        "cidrMatch(source.address, \"192.168.0.0/16\", \"10.0.0.0/8\")",
        d.clone()
    ));
    assert!(any("cidrMatch(source.address, \"0.0.0.0/0\")", d.clone()));
    assert!(any("cidrMatch(source.address, \"fe80::/10\")", d.clone()));
    assert!(!any("cidrMatch(bad, \"0.0.0.0/0\")", d.clone()));
    // As a value: compared with a boolean, converted to a string.
    assert!(any(
        "cidrMatch(source.address, \"10.6.48.157/8\") == true",
        d.clone()
    ));
    assert!(any(
        "true == cidrMatch(source.address, \"10.6.48.157/8\")",
        d.clone()
    ));
    assert!(any(
        "string(cidrMatch(source.address, \"10.6.48.157/8\")) : \"true\"",
        d
    ));
    assert_eq!(err("cidrMatch(a, \"10.0.0.0/33\")"), EqlErrorKind::Syntax);
}

#[test]
fn in_and_like_on_expressions() {
    let d = json!({"n": 12});
    assert!(any("string(n) like (\"1*\")", d.clone()));
    assert!(any("string(n) like \"1?\"", d.clone()));
    assert!(!any("string(n) like \"1\"", d.clone()));
    assert!(any("string(n) : \"1*\"", d.clone()));
    assert!(any("n + 1 in (13, 14)", d.clone()));
    assert!(!any("n + 1 in (1, 2)", d.clone()));
    assert!(any("n in (a, 12)", d.clone()));
    assert!(any("substring(string(n), 1) regex \"[0-9]\"", d));
}

// ---- dates (ExpressionTranslators.BinaryComparisons: range queries) ------

#[test]
fn dates_compare_as_dates() {
    let d = json!({"@timestamp": "2017-08-30T20:47:33.000Z",
                   "process": {"start": 1516116808349i64, "parent": {"start": "2018-01-16T15:33:28.349Z"}},
                   "event": {"ingested": "1516116808349"}});
    assert!(any("@timestamp == \"2017-08-30T20:47:33Z\"", d.clone()));
    assert!(any(
        "@timestamp == \"2017-08-30T22:47:33+02:00\"",
        d.clone()
    ));
    assert!(!any("@timestamp == \"2017-08-30T20:47:34Z\"", d.clone()));
    assert!(any("@timestamp < \"2017-08-30T20:47:34Z\"", d.clone()));
    assert!(any("@timestamp >= \"2017-08-30\"", d.clone()));
    assert!(!any("@timestamp < \"2017-08-30\"", d.clone()));
    // Epoch milliseconds, as a number or a string, on either side.
    assert!(any("process.start == 1516116808349", d.clone()));
    assert!(any("process.start > 1516116808348", d.clone()));
    assert!(any(
        "process.start == \"2018-01-16T15:33:28.349Z\"",
        d.clone()
    ));
    assert!(any("process.parent.start == 1516116808349", d.clone()));
    assert!(any(
        "event.ingested == \"2018-01-16T15:33:28.349Z\"",
        d.clone()
    ));
    assert!(any("1516116808348 < process.start", d.clone()));
    assert!(any(
        "process.start in (1, \"2018-01-16T15:33:28.349Z\")",
        d.clone()
    ));
    assert!(any("@timestamp != \"2017-01-01\"", d.clone()));
    assert!(!any("@timestamp == \"2017-08-30T20:47:33Z\"", json!({})));
    // Not a date: an error, as Elasticsearch fails to parse it.
    assert_eq!(err("@timestamp < \"yesterday\""), EqlErrorKind::Syntax);
}

// ---- errors ---------------------------------------------------------------

#[test]
fn function_errors_are_classified() {
    // Unknown function: unsupported (skipped with the reason), not a crash.
    assert_eq!(err("frobnicate(a)"), EqlErrorKind::Unsupported);
    // Wrong arity, `~` where none exists, a literal of the wrong type: the
    // errors Elasticsearch's verifier gives.
    assert_eq!(err("length(a, b) == 1"), EqlErrorKind::Syntax);
    assert_eq!(err("length~(a) == 1"), EqlErrorKind::Syntax);
    assert_eq!(err("startsWith(a, 5)"), EqlErrorKind::Syntax);
    assert_eq!(err("a + \"x\" == 1"), EqlErrorKind::Syntax);
    // Function names are case-insensitive (EqlFunctionRegistry.normalize).
    assert!(any("STARTSWITH(a, \"x\")", json!({"a": "xy"})));
    assert!(any("StringContains~(a, \"Y\")", json!({"a": "xy"})));
}
