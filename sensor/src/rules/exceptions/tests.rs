//! Entry semantics, one table row per (type, operator, case), from Kibana's
//! documented behaviour (see the module docs of `entry`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;

/// An NDJSON export of one list with one item of `entries`.
fn export(entries: &Value, extra: &Value) -> String {
    let mut item = json!({
        "item_id": "i1", "list_id": "l1", "name": "n", "type": "simple",
        "namespace_type": "single", "os_types": [], "entries": entries,
    });
    if let (Value::Object(item), Value::Object(extra)) = (&mut item, extra) {
        item.extend(extra.clone());
    }
    format!(
        "{}\n{}\n{}\n",
        json!({"list_id": "l1", "name": "List one", "type": "detection", "namespace_type": "single"}),
        item,
        json!({"exported_exception_list_count": 1, "exported_exception_list_item_count": 1,
               "missing_exception_list_item_count": 0, "missing_exception_lists_count": 0}),
    )
}

fn catalogue(entries: &Value, extra: &Value) -> ExceptionCatalogue {
    ExceptionCatalogue::parse(&export(entries, extra), Path::new("x.ndjson"), false).unwrap()
}

fn excepted(cat: &ExceptionCatalogue, event: &Value) -> bool {
    let attached = AttachedLists::resolve(cat, &["l1".to_owned()], &[], &[]).unwrap();
    attached.matching(event).is_some()
}

fn entry(ty: &str, op: &str, field: &str, value: Value) -> Value {
    let mut e = json!({"type": ty, "operator": op, "field": field});
    if !value.is_null() {
        e["value"] = value;
    }
    json!([e])
}

#[test]
fn each_entry_type_and_operator_matches_as_kibana_documents() {
    let git = json!({"process": {"name": "git", "pid": 4242, "executable": "/usr/bin/git"}});
    let upper = json!({"process": {"name": "Git", "pid": 1}});
    let many = json!({"process": {"name": ["sh", "git"]}});
    let none = json!({"process": {"pid": 1}});
    let null = json!({"process": {"name": null}});
    let empty = json!({"process": {"name": []}});
    let dotted = json!({"process.name": "git"});
    let star = json!({"process": {"name": "a*b"}});
    let x = json!({"process": {"name": "axb"}});
    #[rustfmt::skip]
    let table: Vec<(&str, Value, &Value, bool)> = vec![
        // match: exact, whole value, case-sensitive; any element of an array.
        ("match is", entry("match", "included", "process.name", json!("git")), &git, true),
        ("match is: case", entry("match", "included", "process.name", json!("git")), &upper, false),
        ("match is: prefix", entry("match", "included", "process.name", json!("gi")), &git, false),
        ("match is: array", entry("match", "included", "process.name", json!("git")), &many, true),
        ("match is: missing", entry("match", "included", "process.name", json!("git")), &none, false),
        ("match is: dotted key", entry("match", "included", "process.name", json!("git")), &dotted, true),
        ("match is: number", entry("match", "included", "process.pid", json!("4242")), &git, true),
        ("match is not", entry("match", "excluded", "process.name", json!("git")), &git, false),
        ("match is not: other", entry("match", "excluded", "process.name", json!("git")), &upper, true),
        ("match is not: missing", entry("match", "excluded", "process.name", json!("git")), &none, true),
        ("match is not: array", entry("match", "excluded", "process.name", json!("git")), &many, false),
        // match_any
        ("match_any", entry("match_any", "included", "process.name", json!(["curl", "git"])), &git, true),
        ("match_any: none", entry("match_any", "included", "process.name", json!(["curl", "wget"])), &git, false),
        ("match_any: case", entry("match_any", "included", "process.name", json!(["GIT"])), &git, false),
        ("match_any not", entry("match_any", "excluded", "process.name", json!(["curl", "git"])), &git, false),
        ("match_any not: none", entry("match_any", "excluded", "process.name", json!(["curl"])), &git, true),
        ("match_any not: missing", entry("match_any", "excluded", "process.name", json!(["curl"])), &none, true),
        // wildcard: * and ?, case-sensitive, \ escapes
        ("wildcard", entry("wildcard", "included", "process.executable", json!("/usr/bin/*")), &git, true),
        ("wildcard: ?", entry("wildcard", "included", "process.name", json!("?it")), &git, true),
        ("wildcard: whole value", entry("wildcard", "included", "process.name", json!("gi")), &git, false),
        ("wildcard: case", entry("wildcard", "included", "process.executable", json!("/USR/*")), &git, false),
        ("wildcard: escaped star", entry("wildcard", "included", "process.name", json!("a\\*b")), &star, true),
        ("wildcard: escaped star is literal", entry("wildcard", "included", "process.name", json!("a\\*b")), &x, false),
        ("wildcard: star", entry("wildcard", "included", "process.name", json!("a*b")), &x, true),
        ("wildcard not", entry("wildcard", "excluded", "process.executable", json!("/usr/*")), &git, false),
        ("wildcard not: other", entry("wildcard", "excluded", "process.executable", json!("/opt/*")), &git, true),
        ("wildcard not: missing", entry("wildcard", "excluded", "process.executable", json!("/opt/*")), &none, true),
        // exists
        ("exists", entry("exists", "included", "process.name", Value::Null), &git, true),
        ("exists: missing", entry("exists", "included", "process.name", Value::Null), &none, false),
        ("exists: null", entry("exists", "included", "process.name", Value::Null), &null, false),
        ("exists: []", entry("exists", "included", "process.name", Value::Null), &empty, false),
        ("does not exist", entry("exists", "excluded", "process.name", Value::Null), &git, false),
        ("does not exist: missing", entry("exists", "excluded", "process.name", Value::Null), &none, true),
    ];
    for (what, entries, event, want) in table {
        let cat = catalogue(&entries, &json!({}));
        assert_eq!(excepted(&cat, event), want, "{what}: {entries} on {event}");
    }
}

#[test]
fn nested_entries_must_hold_in_one_object_of_the_array() {
    let event = json!({"file": {"Ext": {"code_signature": [
        {"subject_name": "Acme", "trusted": true},
        {"subject_name": "Other", "trusted": false},
    ]}}});
    let nested = |name: &str, trusted: &str, op: &str| {
        json!([{"type": "nested", "field": "file.Ext.code_signature", "entries": [
            {"type": "match", "operator": "included", "field": "subject_name", "value": name},
            {"type": "match", "operator": op, "field": "trusted", "value": trusted},
        ]}])
    };
    // Both in the first object.
    assert!(excepted(
        &catalogue(&nested("Acme", "true", "included"), &json!({})),
        &event
    ));
    // Each holds in some object, not both in one: no match (a flattened
    // evaluation would say yes).
    assert!(!excepted(
        &catalogue(&nested("Acme", "false", "included"), &json!({})),
        &event
    ));
    // `excluded` inside the object.
    assert!(excepted(
        &catalogue(&nested("Acme", "false", "excluded"), &json!({})),
        &event
    ));
    // A single object (not an array) and dotted keys are objects too.
    let single = json!({"file.Ext": {"code_signature": {"subject_name": "Acme", "trusted": true}}});
    assert!(excepted(
        &catalogue(&nested("Acme", "true", "included"), &json!({})),
        &single
    ));
    // No such array: no match.
    assert!(!excepted(
        &catalogue(&nested("Acme", "true", "included"), &json!({})),
        &json!({"file": {}})
    ));
}

#[test]
fn entries_are_anded_items_and_lists_ored() {
    let both = json!([
        {"type": "match", "operator": "included", "field": "process.name", "value": "git"},
        {"type": "match", "operator": "included", "field": "user.name", "value": "ci"},
    ]);
    let cat = catalogue(&both, &json!({}));
    assert!(excepted(
        &cat,
        &json!({"process": {"name": "git"}, "user": {"name": "ci"}})
    ));
    assert!(!excepted(
        &cat,
        &json!({"process": {"name": "git"}, "user": {"name": "root"}})
    ));
    let two_items = format!(
        "{}\n{}\n{}\n",
        json!({"list_id": "l1", "name": "x", "type": "detection"}),
        json!({"item_id": "a", "list_id": "l1", "entries": [{"type": "match", "operator": "included", "field": "process.name", "value": "git"}]}),
        json!({"item_id": "b", "list_id": "l1", "entries": [{"type": "match", "operator": "included", "field": "process.name", "value": "make"}]}),
    );
    let cat = ExceptionCatalogue::parse(&two_items, Path::new("x"), false).unwrap();
    assert!(excepted(&cat, &json!({"process": {"name": "git"}})));
    assert!(excepted(&cat, &json!({"process": {"name": "make"}})));
    assert!(!excepted(&cat, &json!({"process": {"name": "sh"}})));
}

#[test]
fn os_types_and_expire_time_limit_an_item() {
    let entries = entry("match", "included", "process.name", json!("git"));
    let cat = catalogue(&entries, &json!({"os_types": ["linux"]}));
    assert!(excepted(
        &cat,
        &json!({"host": {"os": {"type": "linux"}}, "process": {"name": "git"}})
    ));
    assert!(!excepted(
        &cat,
        &json!({"host": {"os": {"type": "windows"}}, "process": {"name": "git"}})
    ));
    assert!(!excepted(&cat, &json!({"process": {"name": "git"}})));

    let cat = catalogue(
        &entries,
        &json!({"expire_time": "2026-03-01T00:00:00.000Z"}),
    );
    let at = |t: &str| json!({"@timestamp": t, "process": {"name": "git"}});
    assert!(excepted(&cat, &at("2026-02-28T23:59:59.999Z")));
    assert!(
        !excepted(&cat, &at("2026-03-01T00:00:00.000Z")),
        "expired items do not apply"
    );
}

#[test]
fn value_lists_are_local_files_of_a_supported_type() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let specs = vec![
        ValueListSpec {
            id: "names".into(),
            list_type: "keyword".into(),
            path: write("names.txt", "git\n\nmake\n"),
        },
        ValueListSpec {
            id: "hosts".into(),
            list_type: "ip".into(),
            path: write("hosts.txt", "203.0.113.5\n2001:db8::1\n"),
        },
        ValueListSpec {
            id: "nets".into(),
            list_type: "ip_range".into(),
            path: write("nets.txt", "203.0.113.0/28\n198.51.100.10-198.51.100.20\n"),
        },
    ];
    let list_entry = |field: &str, id: &str, ty: &str, op: &str| json!([{"type": "list", "operator": op, "field": field, "list": {"id": id, "type": ty}}]);
    let load = |entries: &Value| {
        let path = write("ex.ndjson", &export(entries, &json!({})));
        ExceptionCatalogue::load_paths(&[path], &specs).unwrap()
    };
    let cat = load(&list_entry("process.name", "names", "keyword", "included"));
    assert!(excepted(&cat, &json!({"process": {"name": "make"}})));
    assert!(!excepted(&cat, &json!({"process": {"name": "Make"}})));
    let cat = load(&list_entry("process.name", "names", "keyword", "excluded"));
    assert!(excepted(&cat, &json!({"process": {"name": "sh"}})));
    let cat = load(&list_entry("source.ip", "hosts", "ip", "included"));
    assert!(
        excepted(&cat, &json!({"source": {"ip": "2001:0db8:0::1"}})),
        "the same address however written"
    );
    assert!(!excepted(&cat, &json!({"source": {"ip": "203.0.113.6"}})));
    let cat = load(&list_entry("source.ip", "nets", "ip_range", "included"));
    assert!(excepted(&cat, &json!({"source": {"ip": "203.0.113.15"}})));
    assert!(!excepted(&cat, &json!({"source": {"ip": "203.0.113.16"}})));
    assert!(excepted(&cat, &json!({"source": {"ip": "198.51.100.20"}})));

    // Not configured, another type, an unsupported type: errors that say so.
    let path = write(
        "ex.ndjson",
        &export(&list_entry("a", "nope", "keyword", "included"), &json!({})),
    );
    let e = ExceptionCatalogue::load_paths(&[path], &specs).unwrap_err();
    assert!(
        e.message
            .contains("value list \"nope\", which is not configured"),
        "{e}"
    );
    let path = write(
        "ex.ndjson",
        &export(&list_entry("a", "names", "ip", "included"), &json!({})),
    );
    let e = ExceptionCatalogue::load_paths(&[path], &specs).unwrap_err();
    assert!(
        e.message
            .contains("of type ip, it is configured as keyword"),
        "{e}"
    );
    let text = vec![ValueListSpec {
        id: "t".into(),
        list_type: "text".into(),
        path: write("t.txt", "a\n"),
    }];
    let e = ExceptionCatalogue::load_paths(&[], &text).unwrap_err();
    assert!(
        e.message
            .contains("type \"text\" is not supported locally (supported: keyword, ip, ip_range)"),
        "{e}"
    );
    let bad = vec![ValueListSpec {
        id: "b".into(),
        list_type: "ip".into(),
        path: write("b.txt", "1.2.3.4\nnot-an-ip\n"),
    }];
    let e = ExceptionCatalogue::load_paths(&[], &bad).unwrap_err();
    assert!(
        e.message
            .contains("line 2: \"not-an-ip\" is not a value of type ip"),
        "{e}"
    );
}

#[test]
fn malformed_or_cut_exports_are_errors_naming_the_line() {
    let item = export(
        &entry("match", "included", "process.name", json!("git")),
        &json!({}),
    );
    let cut: String = item
        .lines()
        .filter(|l| !l.contains("\"item_id\""))
        .collect::<Vec<_>>()
        .join("\n");
    let e = ExceptionCatalogue::parse(&cut, Path::new("x"), false).unwrap_err();
    assert!(
        e.message
            .contains("summary counts 1 lists and 1 items, the file holds 1 and 0"),
        "{e}"
    );
    let bad = export(
        &json!([{"type": "regex", "operator": "included", "field": "a", "value": "x"}]),
        &json!({}),
    );
    let e = ExceptionCatalogue::parse(&bad, Path::new("x"), false).unwrap_err();
    assert!(
        e.message
            .starts_with("line 2: invalid exception item: unknown variant `regex`"),
        "{e}"
    );
    let bad = export(
        &json!([{"type": "match", "operator": "maybe", "field": "a", "value": "x"}]),
        &json!({}),
    );
    assert!(ExceptionCatalogue::parse(&bad, Path::new("x"), false).is_err());
    let nested_wildcard = export(
        &json!([{"type": "nested", "field": "a", "entries": [{"type": "wildcard", "operator": "included", "field": "b", "value": "*"}]}]),
        &json!({}),
    );
    let e = ExceptionCatalogue::parse(&nested_wildcard, Path::new("x"), false).unwrap_err();
    assert!(
        e.message
            .contains("a wildcard entry inside the nested entry a"),
        "{e}"
    );
    let e = ExceptionCatalogue::parse(&export(&json!([]), &json!({})), Path::new("x"), false)
        .unwrap_err();
    assert!(e.message.contains("item i1: no entries"), "{e}");
    let e = ExceptionCatalogue::parse("{\"list_id\": \"l\"}\nnot json\n", Path::new("x"), false)
        .unwrap_err();
    assert!(e.message.starts_with("line 2: not JSON"), "{e}");
}

#[test]
fn the_toml_form_reads_like_the_export() {
    let text = r#"
[[list]]
list_id = "l1"
name = "CI"

[[list.item]]
name = "git by ci"
entries = [
  { field = "process.name", operator = "included", type = "match", value = "git" },
  { field = "user.name", operator = "included", type = "match_any", value = ["ci", "build"] },
]
"#;
    let cat = ExceptionCatalogue::parse(text, Path::new("x.toml"), true).unwrap();
    let list = cat.get("l1").unwrap();
    assert_eq!(
        (list.name.as_str(), list.items()[0].item_id.as_str()),
        ("CI", "l1#1")
    );
    assert!(excepted(
        &cat,
        &json!({"process": {"name": "git"}, "user": {"name": "build"}})
    ));
    assert!(!excepted(
        &cat,
        &json!({"process": {"name": "git"}, "user": {"name": "root"}})
    ));
    let e = ExceptionCatalogue::parse("[[lists]]\n", Path::new("x.toml"), true).unwrap_err();
    assert!(e.message.contains("unknown field `lists`"), "{e}");
}

#[test]
fn configured_lists_must_exist_and_rule_references_may_be_missing() {
    let cat = catalogue(&entry("exists", "included", "a", Value::Null), &json!({}));
    let e = AttachedLists::resolve(&cat, &[], &["zz".into()], &[]).unwrap_err();
    assert_eq!(e, "exception list zz is not defined by any exceptions file");
    let a = AttachedLists::resolve(
        &cat,
        &["gone".into(), "l1".into()],
        &["l1".into()],
        &["l1".into()],
    )
    .unwrap();
    assert_eq!(a.missing, vec!["gone".to_owned()]);
    assert_eq!(
        a.lists.len(),
        1,
        "a list attached three ways is evaluated once"
    );
    assert_eq!(a.lists[0].0, Attachment::Rule);
}
