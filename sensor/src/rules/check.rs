//! `sensor rules check`: a per-rule report for rule authors and CI.

use std::io::Write;
use std::path::PathBuf;

use super::load::{expand_paths, load_file, LoadOutcome};

/// Loads every file under `paths` and prints one line per rule:
/// `<rule_id>\t<name>\tsupported` or `...\tunsupported: <reason>`; a
/// malformed file prints its rendered error instead. Ends with a summary
/// line. Returns `Ok(false)` if any file is malformed (or a path cannot be
/// read); `Err` only if writing to `out` fails.
pub fn check_paths(paths: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<bool> {
    let files = match expand_paths(paths) {
        Ok(f) => f,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(false);
        }
    };
    let (mut supported, mut unsupported, mut malformed) = (0usize, 0usize, 0usize);
    let mut sequences = 0usize;
    for file in &files {
        match load_file(file) {
            Ok(LoadOutcome::Supported(rule)) => {
                supported += 1;
                writeln!(out, "{}\t{}\tsupported", rule.meta.rule_id, rule.meta.name)?;
            }
            Ok(LoadOutcome::Sequence(rule)) => {
                supported += 1;
                sequences += 1;
                writeln!(
                    out,
                    "{}\t{}\tsupported (sequence)",
                    rule.meta.rule_id, rule.meta.name
                )?;
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
    writeln!(
        out,
        "{} files: {supported} supported ({sequences} sequences), {unsupported} unsupported, {malformed} malformed",
        files.len()
    )?;
    Ok(malformed == 0)
}
