//! `cargo xtask eql-qa --suite DIR`: runs Elasticsearch's own EQL QA specs
//! through `sensor replay --query` and reports, per spec file, what passes,
//! what fails (with the difference) and what the engine does not evaluate
//! (with its message).
//!
//! DIR is Elasticsearch's `x-pack/plugin/eql/qa/common/src/main/resources`
//! (the `test_*.toml` specs, `data/*.data` fixtures and `data/*.mapping`
//! index mappings). Those files are under the Elastic License and are not
//! part of this repository: the harness reads them where the user keeps
//! them. Nothing here runs in CI.
//!
//! It does what the QA's Java runner does (`DataLoader`,
//! `BaseEqlSpecTestCase` and the `Eql*SpecTestCase` classes), with the
//! search request turned into `sensor replay` flags:
//!
//! * each spec file belongs to one data set (table [`DATASETS`]): its
//!   indices' `.data` files (JSON arrays) are concatenated, after the
//!   loader's transform (the endgame data's Windows file time `timestamp`
//!   becomes `@timestamp` in epoch milliseconds);
//! * each index's `.mapping` (comments dropped, the random keyword type
//!   placeholder read as `keyword`) is passed as `--mapping`: its aliases
//!   (`event.category` → `event_type`), fields and `null_value`s;
//! * `--timestamp-field @timestamp`, the data set's `--tiebreaker`, and
//!   `--size` 50 (the runner's request size) unless the spec sets `size`;
//! * the result is read with `--output ids --id-field <the data set's id
//!   field>`: a sequence's ids are flattened in order, a missing-event step
//!   counts as `-1`; a spec passes when the ids equal its
//!   `expected_event_ids` (or one of its alternatives, when it lists
//!   several), order included.
//!
//! Specs marked `case_insensitive = true` come from Elasticsearch 7.10,
//! whose search request had a `case_sensitive: false` mode (removed since);
//! they are reported as unsupported without being run. `join_keys` are not
//! compared (`--output ids` prints ids only).
//!
//! `test_queries.toml` runs twice, as Elasticsearch's runners do: over the
//! endgame index and over its nanosecond copy (`EqlDateNanosSpecTestCase`).
//! A 7.x checkout (`test_data.json` and `mapping-default.json` at the top,
//! no `data/`) is read too. `test_queries_unsupported.toml`, 7.x's skip
//! list, is run as a check of what the engine rejects ([`SKIP_LIST`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `cargo xtask eql-qa` arguments.
#[derive(Debug, clap::Args)]
pub struct EqlQaArgs {
    /// Elasticsearch's `x-pack/plugin/eql/qa/common/src/main/resources`
    /// directory (spec files and `data/`).
    #[arg(long, value_name = "DIR")]
    suite: PathBuf,
    /// The sensor binary to run [default: build target/release/sensor].
    #[arg(long, value_name = "PATH")]
    sensor: Option<PathBuf>,
    /// Only run specs whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Also list every passing spec.
    #[arg(long)]
    verbose: bool,
}

/// How the QA loader turns a fixture's events into indexed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// Indexed as they are.
    None,
    /// `DataLoader.timestampToUnixMillis`: `@timestamp` = the Windows file
    /// time `timestamp` in epoch milliseconds.
    FiletimeToMillis,
    /// `DataLoader.timestampToUnixNanos`: the same number read as epoch
    /// nanoseconds: `@timestamp` = its first 12 digits (milliseconds) and
    /// the rest as a fraction of a millisecond, `timestamp` = it / 10^6.
    FiletimeAsNanos,
}

/// One index (or set of indices) of the QA and the specs that query it.
#[derive(Debug)]
struct Dataset {
    /// The indices (`data/<index>.mapping`, `data/<index>.data`).
    indices: &'static [&'static str],
    /// The `.data` file when it is another index's (`endgame-140-nanos`
    /// loads `endgame-140.data`).
    data_from: Option<&'static str>,
    /// The data and mapping files of the older layout (Elasticsearch 7.x:
    /// `test_data.json` and `mapping-default.json` at the top of the
    /// directory), read when `data/<index>.data` is not there.
    legacy: Option<(&'static str, &'static str)>,
    /// Appended to the spec file's name in the report when the file also
    /// runs over another data set.
    tag: &'static str,
    transform: Transform,
    /// The request's `tiebreaker_field`.
    tiebreaker: Option<&'static str>,
    /// The field whose value identifies an event in `expected_event_ids`.
    id_field: &'static str,
    /// The spec files.
    specs: &'static [&'static str],
}

/// The QA's test cases: `EqlSpecTestCase`, `EqlExtraSpecTestCase`,
/// `EqlMissingEventsSpecTestCase`, `EqlSampleTestCase`,
/// `EqlSampleMultipleEntriesTestCase`.
const DATASETS: &[Dataset] = &[
    Dataset {
        indices: &["endgame-140"],
        data_from: None,
        legacy: Some(("test_data.json", "mapping-default.json")),
        tag: "",
        transform: Transform::FiletimeToMillis,
        tiebreaker: Some("serial_event_id"),
        id_field: "serial_event_id",
        specs: &[
            "test_queries.toml",
            "additional_test_queries.toml",
            "test_queries_date.toml",
            "test_between_queries.toml",
            SKIP_LIST,
        ],
    },
    Dataset {
        indices: &["endgame-140-nanos"],
        data_from: Some("endgame-140"),
        legacy: None,
        tag: " (nanos index)",
        transform: Transform::FiletimeAsNanos,
        tiebreaker: Some("serial_event_id"),
        id_field: "serial_event_id",
        specs: &["test_queries_date_nanos.toml", "test_queries.toml"],
    },
    Dataset {
        indices: &["extra"],
        data_from: None,
        legacy: None,
        tag: "",
        transform: Transform::None,
        tiebreaker: Some("sequence"),
        id_field: "sequence",
        specs: &["test_extra.toml"],
    },
    Dataset {
        indices: &["missing-events"],
        data_from: None,
        legacy: None,
        tag: "",
        transform: Transform::None,
        tiebreaker: Some("sequence"),
        id_field: "sequence",
        specs: &["test_missing_events.toml"],
    },
    Dataset {
        indices: &["sample1", "sample2", "sample3"],
        data_from: None,
        legacy: None,
        tag: "",
        transform: Transform::None,
        tiebreaker: None,
        id_field: "id",
        specs: &["test_sample.toml"],
    },
    Dataset {
        indices: &["sample-multi"],
        data_from: None,
        legacy: None,
        tag: "",
        transform: Transform::None,
        tiebreaker: None,
        id_field: "id",
        specs: &["test_sample_multi.toml"],
    },
    Dataset {
        indices: &["sampling1", "sampling2", "sampling3"],
        data_from: None,
        legacy: None,
        tag: "",
        transform: Transform::None,
        tiebreaker: None,
        id_field: "id",
        specs: &["test_sampling.toml"],
    },
];

/// Elasticsearch 7.x's list of `test_queries.toml` queries its engine did
/// not answer as the Python reference did (the runner skipped a spec whose
/// query equals one listed here; later runners no longer read it). Most are
/// constructs Elasticsearch never implemented or dropped (`join`, `unique`,
/// `filter`, `descendant of`, `=` as equality, unknown fields), a few valid
/// queries whose answers differed. It is run here as a check of what this
/// engine rejects: each entry is reported rejected (with the message) or
/// accepted (with whether its ids are the listed ones).
const SKIP_LIST: &str = "test_queries_unsupported.toml";

/// How long one spec may run: the fixtures are a few hundred events, so
/// anything near this is a hang, reported as a failure of that spec.
const SPEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The runner's request size (`BaseEqlSpecTestCase.requestSize`).
const DEFAULT_SIZE: i64 = 50;

/// One `[[queries]]` entry.
#[derive(Debug)]
struct Spec {
    name: String,
    query: String,
    /// Acceptable results (usually one).
    expected: Vec<Vec<i64>>,
    size: Option<i64>,
    /// The request's `max_samples_per_key` (sample queries).
    max_samples_per_key: Option<i64>,
    case_insensitive: bool,
}

/// What `sensor replay --query` answered.
#[derive(Debug)]
enum Answer {
    /// The ids, flattened (a missing-event step is `-1`).
    Ids(Vec<i64>),
    /// Exit status 2: not valid EQL (or an unknown field).
    Invalid(String),
    /// Exit status 3: valid EQL this engine does not evaluate.
    Unsupported(String),
    /// Anything else: a crash, a hang, output that is not ids.
    Broken(String),
}

#[derive(Debug, Default)]
struct FileReport {
    passed: usize,
    failed: Vec<(String, String)>,
    unsupported: Vec<(String, String)>,
    passed_names: Vec<String>,
    /// Skip-list entries this engine rejects (with its message).
    rejected: Vec<(String, String)>,
    /// Skip-list entries accepted, and whether the ids are the listed ones.
    accepted: Vec<(String, String)>,
    /// Whether this is the skip list ([`SKIP_LIST`]).
    skip_list: bool,
    missing: bool,
    /// Why the spec file could not be read.
    unreadable: Option<String>,
}

pub fn run(args: &EqlQaArgs) -> Result<()> {
    if !args.suite.is_dir() {
        bail!(
            "--suite {}: not a directory (expected Elasticsearch's x-pack/plugin/eql/qa/common/src/main/resources)",
            args.suite.display()
        );
    }
    let sensor = match &args.sensor {
        Some(p) => p.clone(),
        None => build_sensor()?,
    };
    let work = std::env::temp_dir().join(format!("sensor-eql-qa-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = run_all(args, &sensor, &work);
    let _ = std::fs::remove_dir_all(&work);
    let reports = result?;
    print!("{}", render(&reports, args.verbose));
    Ok(())
}

/// Builds the release sensor binary (the replay path needs no eBPF object).
fn build_sensor() -> Result<PathBuf> {
    let root = crate::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    crate::run_cmd(Command::new(cargo).current_dir(&root).args([
        "build",
        "-p",
        "sensor",
        "--release",
        "--bin",
        "sensor",
    ]))
    .context("building the sensor")?;
    Ok(crate::sensor_binary_path())
}

fn run_all(args: &EqlQaArgs, sensor: &Path, work: &Path) -> Result<BTreeMap<String, FileReport>> {
    let mut reports = BTreeMap::new();
    for (n, ds) in DATASETS.iter().enumerate() {
        let present: Vec<&'static str> = ds
            .specs
            .iter()
            .copied()
            .filter(|f| args.suite.join(f).is_file())
            .collect();
        for f in ds.specs.iter().filter(|f| !present.contains(f)) {
            reports.insert(
                format!("{f}{}", ds.tag),
                FileReport {
                    missing: true,
                    ..FileReport::default()
                },
            );
        }
        if present.is_empty() {
            continue;
        }
        let data = work.join(format!("dataset-{n}.json"));
        let mappings = prepare(&args.suite, ds, &data)?;
        for file in present {
            let mut report = FileReport {
                skip_list: file == SKIP_LIST,
                ..FileReport::default()
            };
            let specs = match load_specs(&args.suite.join(file)) {
                Ok(specs) => specs,
                Err(e) => {
                    report.unreadable = Some(format!("{e:#}"));
                    reports.insert(format!("{file}{}", ds.tag), report);
                    continue;
                }
            };
            for spec in specs {
                if args.filter.as_ref().is_some_and(|f| !spec.name.contains(f)) {
                    continue;
                }
                if spec.case_insensitive {
                    report.unsupported.push((
                        spec.name,
                        "case_insensitive = true: Elasticsearch 7.10's `case_sensitive: false` search mode (removed since)"
                            .to_owned(),
                    ));
                    continue;
                }
                let answer = run_spec(sensor, ds, &mappings, &data, &spec)?;
                if report.skip_list {
                    match answer {
                        Answer::Invalid(why) => {
                            report.rejected.push((spec.name, format!("invalid: {why}")))
                        }
                        Answer::Unsupported(why) => report
                            .rejected
                            .push((spec.name, format!("unsupported: {why}"))),
                        Answer::Broken(why) => report.failed.push((spec.name, why)),
                        Answer::Ids(got) => {
                            let verdict = if spec.expected.contains(&got) {
                                "the listed ids".to_owned()
                            } else {
                                format!("{got:?}, not the listed {}", expected_text(&spec))
                            };
                            report.accepted.push((spec.name, verdict));
                        }
                    }
                    continue;
                }
                match answer {
                    Answer::Ids(got) if spec.expected.contains(&got) => {
                        report.passed += 1;
                        report.passed_names.push(spec.name);
                    }
                    Answer::Ids(got) => {
                        let why = format!("expected {}, got {got:?}", expected_text(&spec));
                        report.failed.push((spec.name, why));
                    }
                    Answer::Invalid(why) => report
                        .failed
                        .push((spec.name, format!("rejected as invalid EQL: {why}"))),
                    Answer::Broken(why) => report.failed.push((spec.name, why)),
                    Answer::Unsupported(why) => report.unsupported.push((spec.name, why)),
                }
            }
            reports.insert(format!("{file}{}", ds.tag), report);
        }
    }
    Ok(reports)
}

fn expected_text(spec: &Spec) -> String {
    spec.expected
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Writes the data set's events (one JSON array, transformed as the QA
/// loader does) to `out` and its indices' mappings (as plain JSON) beside
/// it; returns the mapping files.
fn prepare(suite: &Path, ds: &Dataset, out: &Path) -> Result<Vec<PathBuf>> {
    let mut events = Vec::new();
    let mut mappings = Vec::new();
    for index in ds.indices {
        let mut data_path = suite
            .join("data")
            .join(format!("{}.data", ds.data_from.unwrap_or(index)));
        let mut mapping_path = suite.join("data").join(format!("{index}.mapping"));
        if let (false, Some((data, mapping))) = (data_path.is_file(), ds.legacy) {
            data_path = suite.join(data);
            mapping_path = suite.join(mapping);
        }
        let text = std::fs::read_to_string(&data_path)
            .with_context(|| format!("reading {}", data_path.display()))?;
        // Elasticsearch's JSON parser accepts comments, and the QA's data
        // files use them.
        let Value::Array(items) = serde_json::from_str(&strip_json_comments(&text))
            .with_context(|| format!("parsing {}", data_path.display()))?
        else {
            bail!("{}: not a JSON array", data_path.display());
        };
        for mut item in items {
            match ds.transform {
                Transform::None => Ok(()),
                Transform::FiletimeToMillis => filetime_to_millis(&mut item),
                Transform::FiletimeAsNanos => filetime_as_nanos(&mut item),
            }
            .with_context(|| format!("{}: an event", data_path.display()))?;
            events.push(item);
        }
        if mapping_path.is_file() {
            let clean = out.with_extension(format!("{index}.mapping.json"));
            std::fs::write(&clean, serde_json::to_vec(&read_mapping(&mapping_path)?)?)
                .with_context(|| format!("writing {}", clean.display()))?;
            mappings.push(clean);
        }
    }
    std::fs::write(out, serde_json::to_vec(&Value::Array(events))?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(mappings)
}

/// `text` without `//` and `/* */` comments outside strings (what Jackson's
/// `ALLOW_COMMENTS`, on in Elasticsearch's parser, skips); a comment becomes
/// a space, so line numbers in errors stay right for `//` comments.
fn strip_json_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    if n == '\n' {
                        out.push('\n');
                    }
                    prev = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `DataLoader.timestampToUnixMillis`.
fn filetime_to_millis(event: &mut Value) -> Result<()> {
    const FILETIME_EPOCH_DIFF: i64 = 11_644_473_600_000;
    const FILETIME_ONE_MILLISECOND: i64 = 10 * 1000;
    let Some(obj) = event.as_object_mut() else {
        bail!("not a JSON object");
    };
    let Some(ts) = obj.get("timestamp").and_then(Value::as_i64) else {
        bail!("no integer `timestamp`");
    };
    obj.insert(
        "@timestamp".to_owned(),
        Value::from(ts / FILETIME_ONE_MILLISECOND - FILETIME_EPOCH_DIFF),
    );
    Ok(())
}

/// `DataLoader.timestampToUnixNanos`.
fn filetime_as_nanos(event: &mut Value) -> Result<()> {
    let Some(obj) = event.as_object_mut() else {
        bail!("not a JSON object");
    };
    let Some(ts) = obj.get("timestamp").and_then(Value::as_i64) else {
        bail!("no integer `timestamp`");
    };
    let digits = ts.to_string();
    if digits.len() <= 12 {
        bail!("`timestamp` {ts} has 12 digits or fewer");
    }
    let (millis, fraction) = digits.split_at(12);
    let stamp = if fraction.bytes().all(|b| b == b'0') {
        millis.to_owned()
    } else {
        format!("{millis}.{fraction}")
    };
    obj.insert("@timestamp".to_owned(), Value::from(stamp));
    obj.insert("timestamp".to_owned(), Value::from(ts / 1_000_000));
    Ok(())
}

/// A QA mapping file as JSON: `#` lines are comments, and
/// `[runtime_random_keyword_type]` placeholders stand for a keyword type
/// (`DataLoader.readMapping`, which picks `keyword` or `wildcard`).
fn read_mapping(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.replace("[runtime_random_keyword_type]", "keyword"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&json).with_context(|| format!("parsing {}", path.display()))
}

/// Reads a spec file the way `EqlSpecLoader` does.
fn load_specs(path: &Path) -> Result<Vec<Spec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = toml::from_str(&quote_bare_nulls_in_join_keys(&text))
        .with_context(|| format!("parsing {}", path.display()))?;
    let Some(queries) = table.get("queries").and_then(toml::Value::as_array) else {
        bail!("{}: no [[queries]]", path.display());
    };
    let mut specs = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let at = || format!("{}: query #{}", path.display(), i + 1);
        // The skip list and `test_between_queries.toml` have unnamed
        // entries: they are named by position.
        let name = q
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), |s| s.trim().to_owned());
        let query = q
            .get("query")
            .and_then(toml::Value::as_str)
            .map(|s| s.trim().to_owned())
            .with_context(|| format!("{}: no query", at()))?;
        let ids = q
            .get("expected_event_ids")
            .and_then(toml::Value::as_array)
            .with_context(|| format!("{} ({name}): no expected_event_ids", at()))?;
        let expected = if ids.iter().all(toml::Value::is_array) && !ids.is_empty() {
            ids.iter()
                .map(|alt| int_list(alt.as_array().map_or(&[][..], Vec::as_slice)))
                .collect::<Option<Vec<_>>>()
        } else {
            int_list(ids).map(|one| vec![one])
        }
        .with_context(|| format!("{} ({name}): invalid expected_event_ids", at()))?;
        specs.push(Spec {
            name,
            query,
            expected,
            size: q.get("size").and_then(toml::Value::as_integer),
            max_samples_per_key: q
                .get("max_samples_per_key")
                .and_then(toml::Value::as_integer),
            case_insensitive: q
                .get("case_insensitive")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false),
        });
    }
    Ok(specs)
}

/// The QA's TOML reader (JToml) accepts `join_keys = [null]`, which TOML
/// does not; join keys are not compared here, so a bare `null` in a
/// `join_keys` array becomes the string `"null"`.
fn quote_bare_nulls_in_join_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0i32;
    for line in text.lines() {
        let in_keys = depth > 0 || line.trim_start().starts_with("join_keys");
        if !in_keys {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut in_string = false;
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if !in_string && rest.starts_with("null") {
                out.push_str("\"null\"");
                rest = &rest[4..];
                continue;
            }
            match c {
                '"' => in_string = !in_string,
                '[' if !in_string => depth += 1,
                ']' if !in_string => depth -= 1,
                _ => {}
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out.push('\n');
    }
    out
}

fn int_list(items: &[toml::Value]) -> Option<Vec<i64>> {
    items.iter().map(toml::Value::as_integer).collect()
}

fn run_spec(
    sensor: &Path,
    ds: &Dataset,
    mappings: &[PathBuf],
    data: &Path,
    spec: &Spec,
) -> Result<Answer> {
    let mut cmd = Command::new(sensor);
    cmd.args(["replay", "--query", &spec.query])
        .args(["--timestamp-field", "@timestamp"])
        .args(["--output", "ids", "--id-field", ds.id_field])
        .args(["--size", &spec.size.unwrap_or(DEFAULT_SIZE).to_string()]);
    if let Some(t) = ds.tiebreaker {
        cmd.args(["--tiebreaker", t]);
    }
    if let Some(n) = spec.max_samples_per_key {
        cmd.args(["--max-samples-per-key", &n.to_string()]);
    }
    for m in mappings {
        cmd.arg("--mapping").arg(m);
    }
    cmd.arg(data);
    let Some(out) = output_within(&mut cmd, SPEC_TIMEOUT)
        .with_context(|| format!("running {}", sensor.display()))?
    else {
        return Ok(Answer::Broken(format!(
            "no answer within {} s (killed)",
            SPEC_TIMEOUT.as_secs()
        )));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = || {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(stderr.trim())
            .to_owned()
    };
    match out.status.code() {
        Some(0) => {}
        Some(3) => return Ok(Answer::Unsupported(message())),
        Some(2) => return Ok(Answer::Invalid(message())),
        _ => {
            return Ok(Answer::Broken(format!(
                "sensor exited with {}: {}",
                out.status,
                message()
            )))
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut got = Vec::new();
    for word in stdout.split_whitespace() {
        got.push(match word {
            "missing" => -1,
            w => match w.parse::<i64>() {
                Ok(id) => id,
                Err(_) => return Ok(Answer::Broken(format!("unexpected id {w:?} in the output"))),
            },
        });
    }
    Ok(Answer::Ids(got))
}

/// Runs `cmd` to completion and returns its output, or kills it and returns
/// `None` after `limit`. Output is drained by threads so a chatty child
/// cannot block on a full pipe.
fn output_within(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> Result<Option<std::process::Output>> {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

fn render(reports: &BTreeMap<String, FileReport>, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| spec file | specs | passed | failed | unsupported |\n| --- | ---: | ---: | ---: | ---: |"
    );
    let (mut tp, mut tf, mut tu) = (0, 0, 0);
    for (file, r) in reports.iter().filter(|(_, r)| !r.skip_list) {
        if r.missing {
            let _ = writeln!(s, "| {file} | not in the suite directory | | | |");
            continue;
        }
        if let Some(why) = &r.unreadable {
            let _ = writeln!(s, "| {file} | unreadable: {why} | | | |");
            continue;
        }
        let (p, f, u) = (r.passed, r.failed.len(), r.unsupported.len());
        tp += p;
        tf += f;
        tu += u;
        let _ = writeln!(s, "| {file} | {} | {p} | {f} | {u} |", p + f + u);
    }
    let _ = writeln!(s, "| **total** | {} | {tp} | {tf} | {tu} |", tp + tf + tu);
    for (file, r) in reports.iter().filter(|(_, r)| r.skip_list && !r.missing) {
        if let Some(why) = &r.unreadable {
            let _ = writeln!(s, "\n{file} (skip list): unreadable: {why}");
            continue;
        }
        let same = r
            .accepted
            .iter()
            .filter(|(_, v)| v == "the listed ids")
            .count();
        let _ = writeln!(
            s,
            "\n{file} (Elasticsearch 7.x skip list, run as a check): {} entries, {} rejected, {} accepted ({same} with the listed ids), {} broken",
            r.rejected.len() + r.accepted.len() + r.failed.len(),
            r.rejected.len(),
            r.accepted.len(),
            r.failed.len()
        );
    }
    for (file, r) in reports {
        if r.missing {
            continue;
        }
        if !r.failed.is_empty() {
            let _ = writeln!(s, "\n{file}: failed");
            for (name, why) in &r.failed {
                let _ = writeln!(s, "  {name}: {why}");
            }
        }
        if !r.unsupported.is_empty() {
            let _ = writeln!(s, "\n{file}: unsupported");
            for (name, why) in &r.unsupported {
                let _ = writeln!(s, "  {name}: {why}");
            }
        }
        if !r.accepted.is_empty() {
            let _ = writeln!(s, "\n{file}: accepted");
            for (name, why) in &r.accepted {
                let _ = writeln!(s, "  {name}: {why}");
            }
        }
        if verbose && !r.rejected.is_empty() {
            let _ = writeln!(s, "\n{file}: rejected");
            for (name, why) in &r.rejected {
                let _ = writeln!(s, "  {name}: {why}");
            }
        }
        if verbose && !r.passed_names.is_empty() {
            let _ = writeln!(s, "\n{file}: passed\n  {}", r.passed_names.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_read_past_comments_and_placeholders() {
        let dir = std::env::temp_dir().join(format!("eql-qa-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("x.mapping");
        std::fs::write(
            &path,
            "# comment\n{\"properties\": {\"kind\": {\"type\": \"[runtime_random_keyword_type]\"}}}\n",
        )
        .expect("write");
        let got = read_mapping(&path).expect("mapping");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            got,
            serde_json::json!({"properties": {"kind": {"type": "keyword"}}})
        );
    }

    #[test]
    fn comments_outside_strings_are_dropped() {
        let text = "[ // one\n {\"a\": \"x // not a comment /* nor this */\"}, /* two */ {\"b\": \"q\\\"//\"}\n]";
        let v: Value = serde_json::from_str(&strip_json_comments(text)).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!([{"a": "x // not a comment /* nor this */"}, {"b": "q\"//"}])
        );
    }

    #[test]
    fn bare_nulls_in_join_keys_become_strings() {
        let text =
            "[[queries]]\nquery = 'a == null'\njoin_keys = [null, \"null\",\n  null]\nx = 1\n";
        let fixed = quote_bare_nulls_in_join_keys(text);
        assert_eq!(
            fixed,
            "[[queries]]\nquery = 'a == null'\njoin_keys = [\"null\", \"null\",\n  \"null\"]\nx = 1\n"
        );
        assert!(toml::from_str::<toml::Table>(&fixed).is_ok());
    }

    #[test]
    fn specs_without_a_name_are_named_by_position_and_request_options_are_read() {
        let dir = std::env::temp_dir().join(format!("eql-qa-specs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "[[queries]]\nquery = 'a where true'\nexpected_event_ids = [1]\n\n\
             [[queries]]\nname = \"named\"\nsize = 2\nmax_samples_per_key = 3\n\
             query = '''\n  b where true\n'''\nexpected_event_ids = [[1, 2], [2, 1]]\n",
        )
        .expect("write");
        let specs = load_specs(&path).expect("specs");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "#1");
        assert_eq!(specs[0].expected, vec![vec![1]]);
        assert_eq!((specs[0].size, specs[0].max_samples_per_key), (None, None));
        assert_eq!(specs[1].name, "named");
        assert_eq!(specs[1].query, "b where true");
        assert_eq!(specs[1].expected, vec![vec![1, 2], vec![2, 1]]);
        assert_eq!(
            (specs[1].size, specs[1].max_samples_per_key),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn a_hung_child_is_killed_and_a_quick_one_answers() {
        let quick = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            std::time::Duration::from_secs(30),
        )
        .expect("spawn")
        .expect("answered");
        assert_eq!(quick.stdout, b"out\n");
        assert_eq!(quick.stderr, b"err\n");
        let hung = output_within(
            Command::new("sleep").arg("30"),
            std::time::Duration::from_millis(200),
        )
        .expect("spawn");
        assert!(hung.is_none());
    }

    #[test]
    fn filetime_read_as_nanos_splits_at_the_millisecond() {
        let mut e = serde_json::json!({"timestamp": 131_486_017_294_365_140_i64});
        filetime_as_nanos(&mut e).expect("transform");
        assert_eq!(e["@timestamp"], serde_json::json!("131486017294.365140"));
        assert_eq!(e["timestamp"], serde_json::json!(131_486_017_294_i64));
        let mut e = serde_json::json!({"timestamp": 131_485_996_510_000_000_i64});
        filetime_as_nanos(&mut e).expect("transform");
        assert_eq!(e["@timestamp"], serde_json::json!("131485996510"));
    }

    #[test]
    fn filetime_becomes_epoch_millis() {
        // 2017-08-30T20:47:33Z as a Windows file time (100 ns ticks since 1601).
        let mut e = serde_json::json!({"timestamp": 131_485_996_530_000_000_i64});
        filetime_to_millis(&mut e).expect("transform");
        assert_eq!(e["@timestamp"], serde_json::json!(1_504_126_053_000_i64));
    }
}
