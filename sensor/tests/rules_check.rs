//! `rules check` over Elastic's cloud_defend rules (the seed among them), and located errors
//! for malformed files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sensor::rules::sources::Availability;
use sensor::rules::{check_paths, check_paths_with, RuleErrorKind, RuleSet};

mod support;

use support::rule_file;

/// Elastic's Defend-for-Containers rules (the seed rule among them): the
/// built-in pack.
fn rule_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("builtin:d4c")]
}

#[test]
fn check_reports_48_supported_and_1_unsupported_of_49() {
    let mut out = Vec::new();
    let files = Availability {
        file_events: Ok("test".into()),
        network_events: Ok("test".into()),
    };
    let ok = check_paths_with(&rule_dirs(), &files, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some("49 files: 48 supported (43 single-event rules that can fire here, 5 sequences), 1 unsupported, 0 malformed")
    );
    // The set's prefilter: every operation reduces (the chmod rule, with
    // no file condition, reduces to its process names).
    let set = lines[lines.len() - 2];
    assert_eq!(
        set,
        "file prefilter: open: 60 atoms; creation: 67 atoms; deletion: 14 atoms; rename: 50 atoms"
    );
    let rule_lines = &lines[..lines.len() - 2];
    assert_eq!(rule_lines.len(), 49);
    let supported = rule_lines
        .iter()
        .filter(|l| l.contains("\tsupported\tsources: "))
        .count();
    assert_eq!(supported, 43);
    // Every file rule names its file sources.
    assert!(rule_lines
        .iter()
        .any(|l| l.contains("Dynamic Linker Modification")
            && l.contains("\tsupported\tsources: file:open+file:creation+file:rename\tprefilter: open: path \"/etc/ld.so.conf\", path \"/etc/ld.so.preload\", prefix \"/etc/ld.so.conf.d/\"; creation: ")));
    // Each file rule names its atoms, or why it passes everything.
    assert!(rule_lines.iter().any(|l| l.contains("Shell Command-Line History Deletion")
        && l.ends_with("\tprefilter: deletion: name \".bash_history\", name \".sh_history\", name \".zsh_history\"")));
    assert!(rule_lines
        .iter()
        .any(|l| l.contains("File Execution Permission Modification")
            && l.contains("\tprefilter: open: process.name \"bash\", process.name \"busybox\", process.name \"chmod\", ")));
    let sequences = rule_lines
        .iter()
        .filter(|l| l.contains("\tsupported (sequence)\tsources: "))
        .count();
    assert_eq!(sequences, 5);
    let kuery: Vec<&&str> = rule_lines
        .iter()
        .filter(|l| {
            l.contains("\tunsupported: language `kuery` (rule type `query`) is not supported")
        })
        .collect();
    assert_eq!(kuery.len(), 1);
    assert!(kuery[0]
        .starts_with("4b4e9c99-27ea-4621-95c8-82341bc6e512\tContainer Workload Protection\t"));
    assert!(rule_lines.iter().any(|l| l.starts_with(
        "497a7091-0ebd-44d7-88c4-367ab4d4d852\tWeb Server Exploitation Detected via Defend for Containers\tsupported\tsources: process:exec"
    )));
}

#[test]
fn without_file_events_file_rules_are_never_supported() {
    let mut out = Vec::new();
    let none = Availability {
        file_events: Err("test kernel".into()),
        network_events: Ok("test".into()),
    };
    check_paths_with(&rule_dirs(), &none, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The 6 `file where` rules and the 5 `any where` rules with a file
    // branch need file events.
    let need_files = lines
        .iter()
        .filter(|l| {
            l.contains("\tunsupported: sources: ") && l.contains("not provided here: file:")
        })
        .count();
    assert_eq!(need_files, 11, "{text}");
    // So do the 3 sequences with a file step (the cradle, the interactive
    // create-then-exec, the download-then-exec); the other 2 run on execs.
    let sequences_need_files = lines
        .iter()
        .filter(|l| {
            l.contains("\tunsupported: a step of the sequence: ")
                && l.contains("not provided here: file:")
        })
        .count();
    assert_eq!(sequences_need_files, 3, "{text}");
    assert_eq!(
        lines.last().copied(),
        Some("49 files: 34 supported (32 single-event rules that can fire here, 2 sequences), 15 unsupported, 0 malformed")
    );
}

#[test]
fn load_paths_counts_and_categories() {
    let report = RuleSet::load_paths(&rule_dirs()).unwrap();
    assert_eq!(report.ruleset.len(), 48);
    assert_eq!(report.ruleset.rules().len(), 43);
    assert_eq!(report.ruleset.sequences().len(), 5);
    assert_eq!(report.skipped.len(), 1);
    let mut cats = std::collections::BTreeMap::new();
    for r in report.ruleset.rules() {
        *cats
            .entry(r.query.category().unwrap_or("any").to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(cats.get("process"), Some(&32));
    assert_eq!(cats.get("file"), Some(&6));
    assert_eq!(cats.get("any"), Some(&5));
    // Loading the same rules twice is a duplicate-id error.
    let mut twice = rule_dirs();
    twice.push(rule_dirs()[0].clone());
    let r = RuleSet::load_paths(&twice).unwrap();
    assert_eq!(r.ruleset.len(), 48);
    // Every supported rule of the second copy is refused, each on its own.
    assert_eq!(r.errors.len(), 48);
    for e in &r.errors {
        assert_eq!(e.kind, RuleErrorKind::Invalid);
        assert!(e.message.contains("duplicate rule_id"), "{e}");
    }
}

#[test]
fn embedded_default_is_the_seed_rule() {
    let rs = RuleSet::embedded_default().unwrap();
    assert_eq!(rs.len(), 1);
    let m = &rs.rules()[0].meta;
    assert_eq!(m.rule_id, "497a7091-0ebd-44d7-88c4-367ab4d4d852");
    assert_eq!(m.severity, "high");
    assert_eq!(m.risk_score, 73);
    assert_eq!(m.threat.len(), 5);
    assert_eq!(m.threat[0].technique[0].subtechnique[0].id, "T1505.003");
    assert_eq!(m.timestamp_override.as_deref(), Some("event.ingested"));
}

/// The one error of loading `paths` (each holds one bad file).
fn load_err(paths: &[PathBuf]) -> sensor::rules::RuleError {
    let mut r = RuleSet::load_paths(paths).unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    r.errors.remove(0)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const HEADER: &str = "[metadata]\nmaturity = \"production\"\n\n[rule]\nname = \"T\"\nrule_id = \"r1\"\nseverity = \"low\"\nrisk_score = 21\nlanguage = \"eql\"\ntype = \"eql\"\n";

#[test]
fn bad_eql_is_located_in_the_file_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.toml",
        &format!("{HEADER}query = '''\nprocess where event.type == \"start\" and\n  process.name = \"sh\"\n'''\n"),
    );
    let e = load_err(std::slice::from_ref(&p));
    assert_eq!(e.kind, RuleErrorKind::Eql);
    assert_eq!((e.line, e.column), (Some(13), Some(16)));
    let want = format!(
        "error: invalid EQL query: `=` is not an EQL operator; use `==` to compare\n  --> {}:13:16\n   |\n13 |   process.name = \"sh\"\n   |                ^",
        p.display()
    );
    assert_eq!(e.to_string(), want);
    // rules check prints it and fails.
    let mut out = Vec::new();
    assert!(!check_paths(&[p], &mut out).unwrap());
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(&want), "{text}");
    assert!(text.ends_with("1 files: 0 supported (0 single-event rules that can fire here, 0 sequences), 0 unsupported, 1 malformed\n"));
}

#[test]
fn bad_regex_points_at_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "re.toml",
        &format!("{HEADER}query = '''\nprocess where process.args regex \"a&b\"\n'''\n"),
    );
    let e = load_err(&[p]);
    assert_eq!((e.line, e.column), (Some(12), Some(34)));
    assert!(
        e.message
            .contains("intersection operator `&` cannot be translated"),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("|                                  ^^^^^"),
        "{e}"
    );
}

#[test]
fn malformed_toml_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "t.toml",
        "[rule]\nname = \"x\"\nrule_id = = \"y\"\n",
    );
    let e = load_err(std::slice::from_ref(&p));
    assert_eq!(e.kind, RuleErrorKind::Toml);
    assert_eq!(e.line, Some(3));
    assert!(
        e.to_string().contains(&format!("--> {}:3:", p.display())),
        "{e}"
    );
    assert!(e.to_string().contains("3 | rule_id = = \"y\""), "{e}");
    // Missing required keys are TOML errors too.
    let p = write(dir.path(), "m.toml", "[rule]\nname = \"x\"\n");
    let e = load_err(&[p]);
    assert_eq!(e.kind, RuleErrorKind::Toml);
    assert!(e.message.contains("rule_id"), "{e}");
}

#[test]
fn non_eql_rule_types_are_skipped_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[rule]\nname = \"N\"\nrule_id = \"ID\"\n";
    write(
        dir.path(),
        "a.toml",
        &format!("{base}language = \"esql\"\ntype = \"esql\"\nquery = \"from x\"\n"),
    );
    write(
        dir.path(),
        "b.toml",
        &format!("{}type = \"machine_learning\"\n", base.replace("ID", "ID2")),
    );
    write(
        dir.path(),
        "c.toml",
        &format!(
            "{}language = \"kuery\"\ntype = \"threshold\"\nquery = \"a:b\"\n",
            base.replace("ID", "ID3")
        ),
    );
    write(dir.path(), "d.toml", &format!("{}language = \"eql\"\ntype = \"eql\"\nquery = 'join by x [any where true] [any where true]'\n", base.replace("ID", "ID4")));
    write(dir.path(), "ignored.txt", "not a rule");
    let r = RuleSet::load_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(r.ruleset.len(), 0);
    let reasons: Vec<(&str, &str)> = r
        .skipped
        .iter()
        .map(|s| (s.rule_id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons[0]
        .1
        .starts_with("language `esql` (rule type `esql`) is not supported"));
    assert!(reasons[1]
        .1
        .starts_with("rule type `machine_learning` is not supported"));
    assert!(reasons[2]
        .1
        .starts_with("language `kuery` (rule type `threshold`) is not supported"));
    assert!(reasons[3].1.starts_with("`join` queries are not supported"));
}

#[test]
fn one_bad_file_never_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let rule =
        |id: &str, query: &str| HEADER.replace("r1", id) + &format!("query = '''\n{query}\n'''\n");
    write(
        dir.path(),
        "a_bad.toml",
        &rule("a", "process where a = \"b\""),
    );
    write(
        dir.path(),
        "b_fn.toml",
        &rule(
            "b",
            "process where startsWith~(process.name, \"BASH\") and length(process.args) > 2",
        ),
    );
    write(
        dir.path(),
        "c_unknown.toml",
        &rule("c", "process where frobnicate(process.name)"),
    );
    write(
        dir.path(),
        "d_ok.toml",
        &rule("d", "process where process.name : \"*sh\""),
    );
    let r = RuleSet::load_paths(&[dir.path().to_path_buf()]).unwrap();
    let ids: Vec<&str> = r
        .ruleset
        .rules()
        .iter()
        .map(|r| r.meta.rule_id.as_str())
        .collect();
    assert_eq!(ids, ["b", "d"]);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].path.ends_with("a_bad.toml"));
    assert_eq!(r.skipped.len(), 1);
    assert!(
        r.skipped[0]
            .reason
            .starts_with("unknown function `frobnicate`"),
        "{:?}",
        r.skipped
    );
    // rules check: the same, one line per file, and a failing status.
    let mut out = Vec::new();
    assert!(!check_paths(&[dir.path().to_path_buf()], &mut out).unwrap());
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with("4 files: 2 supported (2 single-event rules that can fire here, 0 sequences), 1 unsupported, 1 malformed\n"),
        "{text}"
    );
}

/// Elastic's detection-rules catalogues (named by `SENSOR_ELASTIC_RULES`)
/// and the built-in Defend-for-Containers pack: every EQL rule is evaluated
/// (sequences included) except `sample`; what remains unsupported is kuery
/// / esql and those.
#[test]
fn elastic_catalogue_has_no_eql_rule_refused_for_a_language_feature() {
    let Some(root) = support::elastic_catalogue() else {
        return;
    };
    for (dir, want) in [
        (
            "linux",
            "363 files: 254 supported (207 single-event rules that can fire here, 47 sequences), 109 unsupported, 0 malformed",
        ),
        (
            "cross-platform",
            "128 files: 59 supported (46 single-event rules that can fire here, 13 sequences), 69 unsupported, 0 malformed",
        ),
        (
            "builtin:d4c",
            "49 files: 48 supported (43 single-event rules that can fire here, 5 sequences), 1 unsupported, 0 malformed",
        ),
    ] {
        let mut out = Vec::new();
        let files = Availability {
            file_events: Ok("test".into()),
            network_events: Ok("test".into()),
        };
        let path = if dir.starts_with("builtin:") {
            PathBuf::from(dir)
        } else {
            root.join(dir)
        };
        let ok = check_paths_with(&[path], &files, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(ok, "{dir}: {text}");
        for line in text.lines().filter(|l| l.contains("\tunsupported: ")) {
            let reason = line.split("\tunsupported: ").nth(1).unwrap_or("");
            assert!(
                reason.starts_with("sources: ")
                    || reason.starts_with("a step of the sequence: sources: ")
                    || reason.starts_with("language `kuery`")
                    || reason.starts_with("language `esql`"),
                "{dir}: refused for a language feature: {line}"
            );
        }
        assert_eq!(text.lines().last(), Some(want), "{dir}");
    }
}

/// Rule files are input an attacker may plant: a list past the cap and a
/// file past the cap are refused with a clear, per-file error, and the
/// other files still load.
#[test]
fn oversized_lists_and_files_are_refused_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let values = |n: usize| {
        (0..n)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let max = sensor::eql::parser::MAX_LIST_VALUES;
    rule_file(
        dir.path(),
        "at-cap",
        &format!("process where process.name in ({})", values(max)),
    );
    let over = rule_file(
        dir.path(),
        "over-cap",
        &format!("process where process.name like ({})", values(max + 1)),
    );
    let huge = dir.path().join("huge.toml");
    std::fs::write(
        &huge,
        " ".repeat(sensor::rules::MAX_RULE_FILE_BYTES as usize + 1),
    )
    .unwrap();
    let r = RuleSet::load_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(r.ruleset.len(), 1, "the rule at the cap loads");
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    let msg = |p: &Path| {
        r.errors
            .iter()
            .find(|e| e.path == p)
            .map(|e| e.message.clone())
            .unwrap_or_default()
    };
    assert!(
        msg(&over).contains("more than 100000 values"),
        "{}",
        msg(&over)
    );
    assert!(msg(&huge).contains("larger than 4 MiB"), "{}", msg(&huge));
}

/// The built-in pack is Elastic's files unchanged: byte for byte what the
/// catalogue directory holds (`cloud_defend/`, or a detection-rules
/// checkout's `integrations/cloud_defend/`), and no file more or less.
#[test]
fn builtin_pack_is_the_catalogues_files_unchanged() {
    let Some(root) = support::elastic_catalogue() else {
        return;
    };
    let Some(upstream) = ["cloud_defend", "integrations/cloud_defend"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.is_dir())
    else {
        panic!("{} has no cloud_defend/ directory", root.display());
    };
    let mut names: Vec<String> = std::fs::read_dir(&upstream)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let pack = sensor::rules::builtin::pack_named(Path::new("builtin:d4c"))
        .unwrap()
        .unwrap();
    assert_eq!(
        pack.iter().map(|f| f.name).collect::<Vec<_>>(),
        names,
        "the pack's files vs {}",
        upstream.display()
    );
    for f in &pack {
        let want = std::fs::read_to_string(upstream.join(f.name)).unwrap();
        assert!(f.text == want, "{} differs from upstream", f.name);
    }
}
