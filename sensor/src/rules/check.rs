//! `sensor rules check`: a per-rule report for rule authors and CI.

use std::io::Write;
use std::path::PathBuf;

use super::fields;
use super::load::{expand_paths, LoadOutcome};
use super::prefilter::{self, FilePrefilter};
use super::sources::{self, Availability};

/// [`check_paths_with`] against what this machine provides
/// ([`Availability::probe`] of the host's features).
pub fn check_paths(paths: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<bool> {
    let host = crate::kernel::host::HostFeatures::probe();
    check_paths_with(paths, &Availability::probe(&host), out)
}

/// Loads every file under `paths` and prints one line per rule:
/// `<rule_id>\t<name>\tsupported\tsources: <kinds>` or
/// `...\tunsupported: <reason>`; a rule whose events this sensor cannot
/// produce here is unsupported, with its sources. A malformed file prints
/// its rendered error instead. A rule that can match file events also
/// gets its prefilter column: per operation, the atoms the kernel checks
/// or why it passes every record (`prefilter: open: path "/etc/x"; …`).
/// When any rule uses file events, a `file prefilter:` line says what the
/// whole set loads (and which rules force pass-all). Ends with a summary
/// line that counts the single-event rules that can fire here. Returns
/// `Ok(false)` if any file is malformed (or a path cannot be read); `Err`
/// only if writing to `out` fails.
pub fn check_paths_with(
    paths: &[PathBuf],
    avail: &Availability,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let files = match expand_paths(paths) {
        Ok(f) => f,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(false);
        }
    };
    let (mut supported, mut unsupported, mut malformed) = (0usize, 0usize, 0usize);
    let mut sequences = 0usize;
    // (name, query) of every supported rule, for the set's prefilter.
    let mut loaded: Vec<(String, String)> = Vec::new();
    let column = |query: &str| match prefilter::derive_rule(query) {
        Ok(d) => prefilter::describe(&d)
            .map(|p| format!("\t{p}"))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    for file in &files {
        let outcome = file.load();
        // Fields the rule reads that no event here carries, after the
        // verdict (rules::fields).
        let note = match &outcome {
            Ok(LoadOutcome::Supported(r)) => fields::note(&r.meta.query),
            Ok(LoadOutcome::Sequence(r)) => fields::note(&r.meta.query),
            _ => String::new(),
        };
        match outcome {
            Ok(LoadOutcome::Supported(rule)) => match sources::needs(&rule.meta.query, avail) {
                Some(n) if !n.supported() => {
                    unsupported += 1;
                    writeln!(
                        out,
                        "{}\t{}\tunsupported: {}{note}",
                        rule.meta.rule_id,
                        rule.meta.name,
                        n.describe()
                    )?;
                }
                n => {
                    supported += 1;
                    let sources = n.map(|n| format!("\t{}", n.describe())).unwrap_or_default();
                    writeln!(
                        out,
                        "{}\t{}\tsupported{sources}{}{note}",
                        rule.meta.rule_id,
                        rule.meta.name,
                        column(&rule.meta.query)
                    )?;
                    loaded.push((rule.meta.name.clone(), rule.meta.query.clone()));
                }
            },
            Ok(LoadOutcome::Sequence(rule)) => {
                let steps = sources::sequence_needs(&rule.meta.query, avail);
                if let Some(n) = steps.iter().find(|n| !n.supported()) {
                    unsupported += 1;
                    writeln!(
                        out,
                        "{}\t{}\tunsupported: a step of the sequence: {}{note}",
                        rule.meta.rule_id,
                        rule.meta.name,
                        n.describe()
                    )?;
                } else {
                    supported += 1;
                    sequences += 1;
                    let kinds: Vec<&str> =
                        steps.iter().flat_map(|n| n.kinds.iter().copied()).collect();
                    writeln!(
                        out,
                        "{}\t{}\tsupported (sequence)\tsources: {}{}{note}",
                        rule.meta.rule_id,
                        rule.meta.name,
                        kinds.join("+"),
                        column(&rule.meta.query)
                    )?;
                    loaded.push((rule.meta.name.clone(), rule.meta.query.clone()));
                }
            }
            Ok(LoadOutcome::Unsupported(s)) => {
                unsupported += 1;
                writeln!(out, "{}\t{}\tunsupported: {}", s.rule_id, s.name, s.reason)?;
            }
            Err(e) => {
                malformed += 1;
                writeln!(out, "{e}")?;
            }
        }
    }
    let set = FilePrefilter::from_queries(loaded.iter().map(|(n, q)| (n.as_str(), q.as_str())));
    if set
        .ops
        .iter()
        .flatten()
        .any(|o| o.as_ref().map_or(true, |a| !a.is_empty()))
    {
        writeln!(out, "{}", set.summary())?;
    }
    writeln!(
        out,
        "{} files: {supported} supported ({} single-event rules that can fire here, {sequences} sequences), {unsupported} unsupported, {malformed} malformed",
        files.len(),
        supported - sequences
    )?;
    Ok(malformed == 0)
}
