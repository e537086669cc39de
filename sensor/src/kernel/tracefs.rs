//! tracefs: where it is, mounting it when it is not, and the record layout
//! of a tracepoint (its `format` file).
//!
//! aya attaches classic tracepoints through tracefs but never mounts it, and
//! minimal hosts and containers often have `/sys/kernel/tracing` empty.
//! Tracepoint record layouts also change between kernels (for example
//! `sched_process_fork`'s `parent_comm` became a `__data_loc` string), so
//! field offsets are read from the running kernel instead of compiled in.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it at {path} failed; \
         mount it by hand (`mount -t tracefs nodev /sys/kernel/tracing`) or, in a container, \
         bind-mount the host's /sys/kernel/tracing"
    )]
    Mount {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read tracepoint format {path}")]
    Format {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "tracefs at {path} is mounted but not readable: run as root or grant CAP_DAC_READ_SEARCH"
    )]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("tracepoint {tracepoint} has no field {field} on this kernel")]
    NoField { tracepoint: String, field: String },
}

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs root, mounting it at `/sys/kernel/tracing` if no candidate
/// is populated. Returns the root and whether this call mounted it.
pub fn ensure_mounted() -> Result<(PathBuf, bool), TracefsError> {
    for c in CANDIDATES {
        match std::fs::metadata(Path::new(c).join("events")) {
            Ok(m) if m.is_dir() => return Ok((PathBuf::from(c), false)),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(TracefsError::Unreadable {
                    path: c.to_owned(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    let target = CANDIDATES[0];
    mount_tracefs(target).map_err(|source| TracefsError::Mount {
        path: target.to_owned(),
        source,
    })?;
    Ok((PathBuf::from(target), true))
}

fn mount_tracefs(target: &str) -> std::io::Result<()> {
    rustix::mount::mount(
        "nodev",
        target,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// The fields of one tracepoint's record, from its `format` file.
#[derive(Debug, Clone)]
pub struct TracepointFormat {
    pub tracepoint: String,
    pub fields: Vec<Field>,
}

impl TracepointFormat {
    pub fn read(root: &Path, category: &str, name: &str) -> Result<Self, TracefsError> {
        let path = root.join("events").join(category).join(name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| TracefsError::Format {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::parse(&format!("{category}/{name}"), &text))
    }

    /// Parses lines like
    /// `field:__data_loc char[] filename;<TAB>offset:8;<TAB>size:4;<TAB>signed:0;`.
    pub fn parse(tracepoint: &str, text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|line| {
                let mut decl = None;
                let mut offset = None;
                let mut size = None;
                for part in line.trim().split(';') {
                    let part = part.trim();
                    if let Some(d) = part.strip_prefix("field:") {
                        decl = Some(d);
                    } else if let Some(o) = part.strip_prefix("offset:") {
                        offset = o.parse().ok();
                    } else if let Some(s) = part.strip_prefix("size:") {
                        size = s.parse().ok();
                    }
                }
                // The name is the last identifier, before any array suffix.
                let decl = decl?;
                let last = decl.split_whitespace().last()?;
                let name = last.split('[').next()?.to_owned();
                Some(Field {
                    name,
                    offset: offset?,
                    size: size?,
                })
            })
            .collect();
        TracepointFormat {
            tracepoint: tracepoint.to_owned(),
            fields,
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn offset(&self, name: &str) -> Result<u32, TracefsError> {
        self.field(name)
            .map(|f| f.offset)
            .ok_or_else(|| TracefsError::NoField {
                tracepoint: self.tracepoint.clone(),
                field: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = "name: sched_process_exit
ID: 369
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;

print fmt: \"comm=%s pid=%d\", REC->comm, REC->pid
";

    #[test]
    fn parses_fields_with_arrays_and_data_loc() {
        let f = TracepointFormat::parse("sched/sched_process_exit", EXIT);
        let names: Vec<_> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["common_type", "common_pid", "comm", "pid", "group_dead"]
        );
        assert_eq!(f.field("comm").map(|f| (f.offset, f.size)), Some((8, 16)));
        assert_eq!(f.offset("group_dead").expect("group_dead"), 32);
        assert!(matches!(
            f.offset("prio"),
            Err(TracefsError::NoField { .. })
        ));
        let dl = TracepointFormat::parse(
            "x",
            "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;",
        );
        assert_eq!(dl.offset("filename").expect("filename"), 8);
    }
}
