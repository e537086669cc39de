//! The parser's limits (`docs/eql.md`, Limits): a rule file is input an
//! attacker may plant, so a query built to nest or chain without end is
//! refused with a located error, never a stack overflow — checked on a
//! thread with the default 2 MiB stack, through every stage a rule goes
//! through (parse, compile, the rule checks and the prefilter, evaluation,
//! drop), and through the `sensor` binary itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use sensor::eql::parser::{MAX_CONDITIONS, MAX_HEIGHT, MAX_NESTING};
use sensor::eql::{compile_statement, Compiled, JsonDocument};
use sensor::rules::RuleSet;

mod support;

use support::rule_file;

/// Runs `f` on a thread with the default 2 MiB stack (what tokio's
/// workers and every spawned thread get): an overflow aborts the test.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// The hostile queries, each with the message it must be refused with.
fn hostile() -> Vec<(&'static str, String, String)> {
    let n = 50_000;
    let chain = |op: &str| vec!["1"; n].join(op);
    let nested = |open: &str, inner: &str, close: &str| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let conditions = (0..=MAX_CONDITIONS + 1)
        .map(|i| format!("process.name == \"p{i}\""))
        .collect::<Vec<_>>();
    // Chains each under the limit, nested in parentheses so that only
    // their sum is too deep.
    let stacked = {
        let mut q = "process.pid".to_string();
        for _ in 0..4 {
            q = format!("({q}{})", " + 1".repeat(MAX_HEIGHT / 2));
        }
        q
    };
    let chain_msg = format!("arithmetic nested more than {MAX_HEIGHT} levels deep");
    let nest_msg = format!("more than {MAX_NESTING} parentheses, `not`s, signs and function calls");
    let cond_msg = format!("more than {MAX_CONDITIONS} `and`/`or` operators");
    vec![
        ("plus", format!("{} == 2", chain(" + ")), chain_msg.clone()),
        ("times", format!("{} == 2", chain(" * ")), chain_msg.clone()),
        ("stacked", format!("{stacked} == 2"), chain_msg),
        ("parens", nested("(", "true", ")"), nest_msg.clone()),
        ("not", nested("not ", "true", ""), nest_msg.clone()),
        (
            "minus",
            format!("{} == 1", nested("-", "process.pid", "")),
            nest_msg.clone(),
        ),
        (
            "sign",
            format!("{} == 1", nested("+", "process.pid", "")),
            nest_msg.clone(),
        ),
        (
            "calls",
            nested("length(", "process.name", ")"),
            nest_msg.clone(),
        ),
        (
            "condition-in-call",
            format!("{} == 1", nested("length(process.pid == ", "1", ")")),
            nest_msg,
        ),
        ("or", conditions.join(" or "), cond_msg.clone()),
        ("and", conditions.join(" and "), cond_msg),
    ]
    .into_iter()
    .map(|(name, cond, msg)| (name, format!("process where {cond}"), msg))
    .collect()
}

#[test]
fn hostile_queries_are_refused_with_a_located_error_on_a_small_stack() {
    on_small_stack(|| {
        for (name, query, msg) in hostile() {
            let err = compile_statement(&query).expect_err(name);
            assert!(err.message.starts_with(&msg), "{name}: {}", err.message);
            assert!(err.span.start > 0 && err.span.start < query.len(), "{name}");
            // As a sequence step, too.
            let seq = format!("sequence [{query}] [process where true]");
            let err = compile_statement(&seq).expect_err(name);
            assert!(err.message.starts_with(&msg), "{name}: {}", err.message);
        }
    });
}

/// The rule loader reports each as that file's error, located, with a
/// bounded excerpt of the line, and loads the other files.
#[test]
fn hostile_rule_files_are_that_files_error_and_the_rest_loads() {
    on_small_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let cases = hostile();
        for (name, query, _) in &cases {
            rule_file(dir.path(), name, query);
        }
        rule_file(dir.path(), "fine", "process where process.name == \"sh\"");
        let r = RuleSet::load_paths(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(r.ruleset.len(), 1, "the fine rule loads");
        assert_eq!(r.errors.len(), cases.len(), "{:?}", r.errors);
        for (name, _, msg) in &cases {
            let e = r
                .errors
                .iter()
                .find(|e| e.path.ends_with(format!("{name}.toml")))
                .unwrap();
            assert!(e.message.contains(msg.as_str()), "{name}: {}", e.message);
            assert!(e.line.is_some() && e.column.is_some(), "{name}: located");
            assert!(e.rendered().len() < 1_000, "{name}: {}", e.rendered());
        }
    });
}

/// The largest queries the limits allow load, run through every stage and
/// evaluate on the small stack: the limits refuse only what no rule needs.
#[test]
fn queries_at_the_limits_load_and_evaluate() {
    on_small_stack(|| {
        // A chain as deep as allowed: the comparison is one level, its
        // left side `MAX_HEIGHT - 1` (the fields make it a run-time
        // evaluation, not a constant).
        let deep_chain = format!(
            "process where process.pid{} > 0",
            " + process.pid".repeat(MAX_HEIGHT - 2)
        );
        let nested_not = format!(
            "process where {}process.name == \"p5\"",
            "not ".repeat(MAX_NESTING)
        );
        let nested_calls = format!(
            "process where {}process.name{} == 2",
            "length(concat(".repeat(MAX_NESTING / 2),
            "))".repeat(MAX_NESTING / 2)
        );
        // As many `or`s as allowed.
        let many = (0..MAX_CONDITIONS)
            .map(|i| format!("process.name == \"p{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let many = format!("process where {many} or process.name == \"p5\"");
        let json = serde_json::json!({
            "event": {"category": ["process"]},
            "process": {"pid": 7, "name": "p5"}
        });
        let doc = JsonDocument::new(&json);
        for (query, want) in [
            (&deep_chain, true),
            (&nested_not, true),
            (&nested_calls, false),
            (&many, true),
        ] {
            let Compiled::Event(q) = compile_statement(query).unwrap() else {
                panic!("not a single-event query");
            };
            assert_eq!(q.matches(&doc), want, "{}", &query[..60]);
        }
        let dir = tempfile::tempdir().unwrap();
        for (i, q) in [&deep_chain, &nested_not, &nested_calls, &many]
            .into_iter()
            .enumerate()
        {
            rule_file(dir.path(), &format!("r{i}"), q);
        }
        let r = RuleSet::load_paths(&[dir.path().to_path_buf()]).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.ruleset.len(), 4);
        let _ = sensor::rules::prefilter::FilePrefilter::from_rules(&r.ruleset);
        let mut out = Vec::new();
        sensor::rules::check_paths(&[dir.path().to_path_buf()], &mut out).unwrap();
    });
}

/// The binary: `rules check` and `replay --query` refuse the 50,000-term
/// chain of the attack (SIGABRT before) with the located error.
#[test]
fn the_binary_refuses_the_attack_query() {
    let dir = tempfile::tempdir().unwrap();
    let query = format!("process where {} == 2", vec!["1"; 50_000].join(" + "));
    let rule = rule_file(dir.path(), "plus", &query);
    let query_file = dir.path().join("query.eql");
    std::fs::write(&query_file, &query).unwrap();
    // On the command line too, as long as one argument may be (128 KiB).
    let short = format!("process where {} == 2", vec!["1"; 20_000].join(" + "));
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let path = |p: &Path| p.display().to_string();
    let replay = |how: &str, query: String| vec!["replay".into(), how.into(), query, path(&events)];
    for (code, args) in [
        (1, vec!["rules".into(), "check".into(), path(&rule)]),
        // 2: not valid EQL (`sensor replay --help`).
        (2, replay("--query-file", path(&query_file))),
        (2, replay("--query", short)),
    ] {
        let args: Vec<String> = args;
        let out = Command::new(env!("CARGO_BIN_EXE_sensor"))
            .args(&args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{}: {all}", args[1]);
        assert!(
            all.contains("arithmetic nested more than"),
            "{}: {all}",
            args[1]
        );
        assert!(all.len() < 2_000, "{}: a bounded excerpt: {all}", args[1]);
    }
}

/// `and` / `or` operators of a tree, counted like the parser counts them
/// (the catalogue's queries are small: recursion is fine here).
fn conditions(e: &sensor::eql::ast::Expr) -> usize {
    use sensor::eql::ast::{Expr, Operand};
    fn in_operand(o: &Operand) -> usize {
        match o {
            Operand::Call { args, .. } => args.iter().map(in_operand).sum(),
            Operand::Arith { left, right, .. } => in_operand(left) + in_operand(right),
            Operand::Neg(x, _) => in_operand(x),
            Operand::Cond(x, _) => conditions(x),
            Operand::Field(_) | Operand::Lit(_) => 0,
        }
    }
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.len() - 1 + xs.iter().map(conditions).sum::<usize>(),
        Expr::Not(x) => conditions(x),
        Expr::Const(_) => 0,
        Expr::Compare { left, right, .. } => in_operand(left) + in_operand(right),
        Expr::In { left, values, .. } => {
            in_operand(left) + values.iter().map(in_operand).sum::<usize>()
        }
        Expr::Like { left, .. } | Expr::Regex { left, .. } | Expr::Test(left) => in_operand(left),
    }
}

/// Elastic's detection-rules catalogues (named by `SENSOR_ELASTIC_RULES`)
/// and the built-in Defend-for-Containers pack sit far inside the limits:
/// their deepest condition and their longest are a small fraction of them
/// (the figures `docs/eql.md` gives).
#[test]
fn elastic_catalogue_is_far_inside_the_limits() {
    let Some(root) = support::elastic_catalogue() else {
        return;
    };
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/defend-for-containers");
    let (mut files, mut deepest, mut longest) = (0, (0, String::new()), (0, String::new()));
    let mut dirs = vec![root, pack];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(doc) = text.parse::<toml::Table>() else {
                continue;
            };
            let rule = doc.get("rule").and_then(|r| r.as_table());
            let Some(rule) =
                rule.filter(|r| r.get("language").and_then(|l| l.as_str()) == Some("eql"))
            else {
                continue;
            };
            let Some(query) = rule.get("query").and_then(|q| q.as_str()) else {
                continue;
            };
            let Ok(stmt) = sensor::eql::parser::parse_statement(query) else {
                continue;
            };
            files += 1;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let queries = sensor::rules::prefilter::statement_queries(&stmt);
            let height = queries
                .iter()
                .map(|q| q.condition.height())
                .max()
                .unwrap_or(0);
            let count: usize = queries.iter().map(|q| conditions(&q.condition)).sum();
            if height > deepest.0 {
                deepest = (height, name.clone());
            }
            if count > longest.0 {
                longest = (count, name);
            }
        }
    }
    eprintln!(
        "{files} EQL rules; deepest condition {} levels ({}), most `and`/`or` {} ({})",
        deepest.0, deepest.1, longest.0, longest.1
    );
    assert!(files > 300, "{files}");
    assert!(deepest.0 * 10 <= MAX_HEIGHT, "{deepest:?}");
    assert!(longest.0 * 10 <= MAX_CONDITIONS, "{longest:?}");
}
