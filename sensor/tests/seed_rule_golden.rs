//! Golden corpus for the seed rule
//! (`rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml`).
//!
//! Every line of `tests/golden/*.jsonl` is a hand-labelled ECS event:
//! `{"id", "expect", "why", "event"}`. Labels were decided from the rule text
//! and the EQL semantics document, never by running an engine (see
//! `tests/golden/README.md`). This test evaluates every event through the
//! embedded rule set and fails listing ALL mismatches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

const SEED_RULE_ID: &str = "497a7091-0ebd-44d7-88c4-367ab4d4d852";
const MIN_CASES: usize = 300;

struct Case {
    file: String,
    line: usize,
    id: String,
    expect: bool,
    why: String,
    event: serde_json::Value,
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.jsonl corpus under {}",
        dir.display()
    );
    files
}

fn load_corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for path in corpus_files() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{file}:{}: invalid JSON: {e}", i + 1));
            let obj = v
                .as_object()
                .unwrap_or_else(|| panic!("{file}:{}: not an object", i + 1));
            let id = obj
                .get("id")
                .and_then(|x| x.as_str())
                .unwrap_or_else(|| panic!("{file}:{}: missing string id", i + 1))
                .to_string();
            let expect = obj
                .get("expect")
                .and_then(|x| x.as_bool())
                .unwrap_or_else(|| panic!("{file}:{}: {id}: missing boolean expect", i + 1));
            let why = obj
                .get("why")
                .and_then(|x| x.as_str())
                .unwrap_or_else(|| panic!("{file}:{}: {id}: missing why", i + 1))
                .to_string();
            assert!(!why.trim().is_empty(), "{file}:{}: {id}: empty why", i + 1);
            let event = obj
                .get("event")
                .cloned()
                .unwrap_or_else(|| panic!("{file}:{}: {id}: missing event", i + 1));
            assert!(
                event.is_object(),
                "{file}:{}: {id}: event is not an object",
                i + 1
            );
            cases.push(Case {
                file: file.clone(),
                line: i + 1,
                id,
                expect,
                why,
                event,
            });
        }
    }
    cases
}

fn group_of(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

#[test]
fn corpus_is_well_formed() {
    let cases = load_corpus();
    assert!(
        cases.len() >= MIN_CASES,
        "golden corpus has {} events, need at least {MIN_CASES}",
        cases.len()
    );
    let mut seen = HashSet::new();
    let dups: Vec<&str> = cases
        .iter()
        .filter(|c| !seen.insert(c.id.as_str()))
        .map(|c| c.id.as_str())
        .collect();
    assert!(dups.is_empty(), "duplicate ids in golden corpus: {dups:?}");
    // Both verdicts must be represented in every group.
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in &cases {
        let g = groups.entry(group_of(&c.id)).or_default();
        if c.expect {
            g.0 += 1;
        } else {
            g.1 += 1;
        }
    }
    let one_sided: Vec<_> = groups
        .iter()
        .filter(|(_, (t, f))| *t == 0 || *f == 0)
        .collect();
    assert!(
        one_sided.is_empty(),
        "groups without both verdicts: {one_sided:?}"
    );
}

#[test]
fn seed_rule_matches_golden_corpus() {
    let cases = load_corpus();
    let rs = sensor::rules::RuleSet::embedded_default().expect("seed rule");
    assert!(
        rs.rules().iter().any(|r| r.meta.rule_id == SEED_RULE_ID),
        "embedded rule set does not contain the seed rule {SEED_RULE_ID}"
    );

    let mut mismatches = Vec::new();
    let mut per_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in &cases {
        let doc = sensor::eql::JsonDocument::new(&c.event);
        let hit = rs.matching(&doc).any(|r| r.meta.rule_id == SEED_RULE_ID);
        let g = per_group.entry(group_of(&c.id)).or_default();
        g.0 += 1;
        if hit != c.expect {
            g.1 += 1;
            mismatches.push(format!(
                "  {}:{} id={} expected={} got={}\n      why: {}",
                c.file, c.line, c.id, c.expect, hit, c.why
            ));
        }
    }

    let summary: Vec<String> = per_group
        .iter()
        .map(|(g, (n, bad))| format!("{g}: {n} cases, {bad} mismatches"))
        .collect();
    eprintln!(
        "seed rule golden corpus: {} cases\n  {}",
        cases.len(),
        summary.join("\n  ")
    );

    assert!(
        mismatches.is_empty(),
        "{} of {} golden events disagree with the engine:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
