//! The sensor's one event type: an ECS process document shaped like Elastic
//! Defend for Containers' process events (`logs-cloud_defend.process*`), so
//! Elastic's rules for that integration evaluate on it unchanged.
//!
//! The same struct is serialised for the events output and evaluated by the
//! rule engine through [`Document`]: fields the engine knows ([`EcsField`])
//! are answered by a `match` with no lookup by name; any other path falls
//! back to the serialised JSON, built at most once per event, so a rule on
//! an unusual field still sees exactly what the output shows.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::action::Action;
use crate::eql::document::{Document, EcsField, FieldRef, Value};

/// `event.*`.
#[derive(Debug, Clone, Serialize)]
pub struct EventFields {
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
    pub action: &'static str,
    pub id: String,
    pub ingested: String,
}

/// `process.tty`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Tty {
    pub char_device: CharDevice,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CharDevice {
    pub major: u32,
    pub minor: u32,
}

impl Tty {
    /// From a kernel `dev_t` (`major << 20 | minor`).
    pub fn from_kernel_dev(dev: u32) -> Tty {
        Tty {
            char_device: CharDevice {
                major: dev >> 20,
                minor: dev & 0xfffff,
            },
        }
    }
}

/// `process.parent.*`: every field optional, a parent the sensor does not
/// know leaves them absent rather than guessed. Its texts are the process
/// table's own (shared, not copied).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParentFields {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Arc<[String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<Arc<str>>,
}

/// `process.entry_leader.*`, `process.session_leader.*`,
/// `process.group_leader.*`: Elastic's Linux session model. The leader as
/// the process table knows it; only `pid` and `same_as_process` when the
/// leader is gone or was never seen. Its texts are the table's own
/// (shared, not copied: three leaders ride on every event).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeaderFields {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Arc<[String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<IdField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<IdField>,
    /// The leader is this very process.
    pub same_as_process: bool,
    /// Entry leaders only: how the entry came about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_meta: Option<EntryMeta>,
}

/// `process.entry_leader.entry_meta`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EntryMeta {
    #[serde(rename = "type")]
    pub entry_type: &'static str,
}

/// `process.*`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessFields {
    pub pid: u32,
    /// Empty when the sensor does not know it (left out, never guessed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    pub args: Vec<String>,
    pub args_count: u32,
    pub command_line: String,
    /// Not ECS: set (true) only when argv was longer than the capture.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<Tty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Not ECS (Elastic Endpoint's `process.Ext` convention): facts of the
    /// exec itself, on `exec` events only.
    #[serde(rename = "Ext", skip_serializing_if = "Option::is_none")]
    pub ext: Option<ProcessExt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_leader: Option<LeaderFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_leader: Option<LeaderFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_leader: Option<LeaderFields>,
}

/// `process.Ext.*`.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessExt {
    /// The filename the caller passed to execve, as the kernel read it: a
    /// symlink's own name, `/dev/stdin`, a script's path, a relative name.
    /// `process.executable` is the file the kernel executed.
    pub execve_filename: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdField {
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostFields {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub os: HostOs,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostOs {
    #[serde(rename = "type")]
    pub os_type: &'static str,
}

/// `container.*`: the id and runtime from the cgroup path, the rest from
/// the runtime's own files (`context::runtime_meta`) once read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerFields {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage>,
    /// Defend for Containers' `container.security_context.privileged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

/// `container.image.*`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerImage {
    pub name: String,
    /// ECS keeps tags as an array (an image may have several).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
}

/// `container.security_context.*`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SecurityContext {
    pub privileged: bool,
}

/// `orchestrator.*` for pods: `type: kubernetes`, the namespace, and the
/// pod as `resource` (`type: pod`, its name, its uid as `id`).
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorFields {
    #[serde(rename = "type")]
    pub orchestrator_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub resource: OrchestratorResource,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorResource {
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `file.Ext.original`: where a renamed file was before (Elastic
/// Endpoint's field for it; ECS has none).
#[derive(Debug, Clone, Serialize)]
pub struct FileOriginal {
    pub path: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileExt {
    pub original: FileOriginal,
}

/// `file.*` of a file event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileFields {
    /// Absent when the kernel could not walk the path whole
    /// (`path_incomplete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(rename = "Ext", skip_serializing_if = "Option::is_none")]
    pub ext: Option<FileExt>,
    /// Not ECS: set (true) only when a path could not be read whole.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub path_incomplete: bool,
}

impl FileFields {
    /// `path`, `name`, `directory` and `extension` from a full path.
    pub fn from_path(path: &str) -> FileFields {
        let (directory, name) = match path.rfind('/') {
            Some(0) => ("/", &path[1..]),
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        // The last extension only (`a.tar.gz` → `gz`); a leading dot alone
        // (`.bashrc`) is no extension.
        let extension = name
            .rfind('.')
            .filter(|&i| i > 0 && i + 1 < name.len())
            .map(|i| name[i + 1..].to_owned());
        FileFields {
            path: Some(path.to_owned()),
            name: (!name.is_empty()).then(|| name.to_owned()),
            directory: (!directory.is_empty()).then(|| directory.to_owned()),
            extension,
            ext: None,
            path_incomplete: false,
        }
    }
}

/// One event: a process event, or a file event with its acting process.
#[derive(Debug, Clone, Serialize)]
pub struct EcsEvent {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: EventFields,
    pub process: ProcessFields,
    pub user: IdField,
    pub group: IdField,
    pub host: HostFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<OrchestratorFields>,
    /// Not ECS: facts about the document itself (only when there are any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor: Option<SensorFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::network::fields::Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<crate::network::fields::Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::fields::NetworkFields>,
    /// The serialised form, built on first need (unknown-field lookups,
    /// alerts). Not part of the document.
    #[serde(skip)]
    json: OnceCell<serde_json::Value>,
}

/// `sensor.*`: facts about the document, not the event.
#[derive(Debug, Clone, Serialize)]
pub struct SensorFields {
    /// The fields whose bytes were not UTF-8 and were escaped (each invalid
    /// byte as `\xNN`, each backslash doubled): only in these is the text
    /// not the bytes as they are (docs/ecs.md).
    pub escaped_fields: Vec<String>,
}

/// RFC 3339 with nanoseconds, UTC: the form Elasticsearch's `date_nanos` takes.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

impl EcsEvent {
    /// A new event with the `event.*` fields set and the rest to fill.
    pub fn new(
        action: Action,
        timestamp: SystemTime,
        event_id: String,
        process: ProcessFields,
        host: HostFields,
        uid: u32,
        gid: u32,
    ) -> EcsEvent {
        EcsEvent {
            timestamp: rfc3339(timestamp),
            event: EventFields {
                kind: "event",
                category: [action.category()],
                kind_type: [action.event_type()],
                action: action.as_str(),
                id: event_id,
                ingested: rfc3339(SystemTime::now()),
            },
            process,
            user: IdField {
                id: uid.to_string(),
            },
            group: IdField {
                id: gid.to_string(),
            },
            host,
            container: None,
            orchestrator: None,
            sensor: None,
            file: None,
            source: None,
            destination: None,
            network: None,
            json: OnceCell::new(),
        }
    }

    /// Whether the serialised form has been built (it is kept with the
    /// event from then on): what the benchmarks count to show which events
    /// carry it.
    pub fn json_built(&self) -> bool {
        self.json.get().is_some()
    }

    /// The document as JSON (built once).
    pub fn to_json(&self) -> &serde_json::Value {
        self.json
            .get_or_init(|| serde_json::to_value(self).unwrap_or(serde_json::Value::Null))
    }
}

/// Joins argv the way ECS `process.command_line` shows it.
pub fn command_line(args: &[String]) -> String {
    args.join(" ")
}

fn visit_str(s: &str, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    f(Value::Str(s))
}

fn visit_opt(s: Option<&str>, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    s.is_some_and(|s| f(Value::Str(s)))
}

fn visit_all(items: &[String], f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    items.iter().any(|s| f(Value::Str(s)))
}

impl Document for EcsEvent {
    fn visit(&self, field: &FieldRef, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
        let p = &self.process;
        let parent = p.parent.as_ref();
        let Some(known) = field.known() else {
            if let Some(found) = self.visit_session_and_runtime(field.path(), f) {
                return found;
            }
            if let Some(found) = self.visit_file(field.path(), f) {
                return found;
            }
            if let Some(found) = self.visit_network(field.path(), f) {
                return found;
            }
            // The JSON form is this event serialised: a path no event ever
            // serialises has no value in it, and building it to find out
            // would cost every event a rule reading such a field reaches.
            if !crate::rules::fields::is_produced(field.path()) {
                return false;
            }
            return self.to_json().visit(field, f);
        };
        match known {
            EcsField::Timestamp => visit_str(&self.timestamp, f),
            EcsField::EventCategory => visit_all_static(&self.event.category, f),
            EcsField::EventType => visit_all_static(&self.event.kind_type, f),
            EcsField::EventAction => visit_str(self.event.action, f),
            EcsField::EventKind => visit_str(self.event.kind, f),
            EcsField::EventId => visit_str(&self.event.id, f),
            EcsField::EventIngested => visit_str(&self.event.ingested, f),
            EcsField::ProcessName => visit_opt((!p.name.is_empty()).then_some(p.name.as_str()), f),
            EcsField::ProcessExecutable => visit_opt(p.executable.as_deref(), f),
            EcsField::ProcessArgs => visit_all(&p.args, f),
            EcsField::ProcessArgsCount => f(Value::Int(i64::from(p.args_count))),
            EcsField::ProcessCommandLine => visit_str(&p.command_line, f),
            EcsField::ProcessPid => f(Value::Int(i64::from(p.pid))),
            EcsField::ProcessInteractive => p.interactive.is_some_and(|b| f(Value::Bool(b))),
            EcsField::ProcessWorkingDirectory => visit_opt(p.working_directory.as_deref(), f),
            EcsField::ProcessEntityId => visit_opt(p.entity_id.as_deref(), f),
            EcsField::ProcessStart => visit_opt(p.start.as_deref(), f),
            EcsField::ProcessParentName => visit_opt(parent.and_then(|x| x.name.as_deref()), f),
            EcsField::ProcessParentExecutable => {
                visit_opt(parent.and_then(|x| x.executable.as_deref()), f)
            }
            EcsField::ProcessParentArgs => parent
                .and_then(|x| x.args.as_deref())
                .is_some_and(|a| visit_all(a, f)),
            EcsField::ProcessParentArgsCount => parent
                .and_then(|x| x.args_count)
                .is_some_and(|n| f(Value::Int(i64::from(n)))),
            EcsField::ProcessParentCommandLine => {
                visit_opt(parent.and_then(|x| x.command_line.as_deref()), f)
            }
            EcsField::ProcessParentPid => parent.is_some_and(|x| f(Value::Int(i64::from(x.pid)))),
            EcsField::ProcessParentInteractive => parent
                .and_then(|x| x.interactive)
                .is_some_and(|b| f(Value::Bool(b))),
            EcsField::ProcessParentEntityId => {
                visit_opt(parent.and_then(|x| x.entity_id.as_deref()), f)
            }
            EcsField::ProcessParentWorkingDirectory => {
                visit_opt(parent.and_then(|x| x.working_directory.as_deref()), f)
            }
            EcsField::UserId => visit_str(&self.user.id, f),
            EcsField::GroupId => visit_str(&self.group.id, f),
            EcsField::ContainerId => visit_opt(self.container.as_ref().map(|c| c.id.as_str()), f),
            EcsField::ContainerRuntime => {
                visit_opt(self.container.as_ref().and_then(|c| c.runtime), f)
            }
            EcsField::HostName => visit_str(&self.host.name, f),
            EcsField::HostOsType => visit_str(self.host.os.os_type, f),
            // Fields this event never carries (user.name, group.name, ...).
            _ => self.to_json().visit(field, f),
        }
    }
}

/// The fields of the session model and of the runtime metadata that D4C
/// rules read (`process.entry_leader.same_as_process`,
/// `container.security_context.privileged`, ...), answered natively: the
/// JSON fallback would serialise the whole event for each shell exec.
/// `None`: not one of these paths.
impl EcsEvent {
    fn visit_session_and_runtime(
        &self,
        path: &str,
        f: &mut dyn FnMut(Value<'_>) -> bool,
    ) -> Option<bool> {
        let p = &self.process;
        let pid = |l: Option<&LeaderFields>, f: &mut dyn FnMut(Value<'_>) -> bool| {
            l.is_some_and(|l| f(Value::Int(i64::from(l.pid))))
        };
        let same = |l: Option<&LeaderFields>, f: &mut dyn FnMut(Value<'_>) -> bool| {
            l.is_some_and(|l| f(Value::Bool(l.same_as_process)))
        };
        let entity = |l: Option<&LeaderFields>, f: &mut dyn FnMut(Value<'_>) -> bool| {
            visit_opt(l.and_then(|l| l.entity_id.as_deref()), f)
        };
        let c = self.container.as_ref();
        let o = self.orchestrator.as_ref();
        Some(match path {
            // Sequence keys of most of Elastic's Linux sequences: the JSON
            // fallback would build the whole document of every event such
            // a sequence's step holds.
            "host.id" => visit_opt(self.host.id.as_deref(), f),
            "process.entry_leader.entity_id" => entity(p.entry_leader.as_ref(), f),
            "process.session_leader.entity_id" => entity(p.session_leader.as_ref(), f),
            "process.group_leader.entity_id" => entity(p.group_leader.as_ref(), f),
            "process.entry_leader.same_as_process" => same(p.entry_leader.as_ref(), f),
            "process.session_leader.same_as_process" => same(p.session_leader.as_ref(), f),
            "process.group_leader.same_as_process" => same(p.group_leader.as_ref(), f),
            "process.entry_leader.pid" => pid(p.entry_leader.as_ref(), f),
            "process.session_leader.pid" => pid(p.session_leader.as_ref(), f),
            "process.group_leader.pid" => pid(p.group_leader.as_ref(), f),
            "process.entry_leader.entry_meta.type" => visit_opt(
                p.entry_leader
                    .as_ref()
                    .and_then(|l| l.entry_meta)
                    .map(|m| m.entry_type),
                f,
            ),
            "container.security_context.privileged" => c
                .and_then(|c| c.security_context)
                .is_some_and(|s| f(Value::Bool(s.privileged))),
            "container.name" => visit_opt(c.and_then(|c| c.name.as_deref()), f),
            "container.image.name" => {
                visit_opt(c.and_then(|c| c.image.as_ref()).map(|i| i.name.as_str()), f)
            }
            "orchestrator.namespace" => visit_opt(o.and_then(|o| o.namespace.as_deref()), f),
            "orchestrator.resource.name" => {
                visit_opt(o.and_then(|o| o.resource.name.as_deref()), f)
            }
            _ => return None,
        })
    }
}

impl EcsEvent {
    /// `file.*` of a file event, answered natively: the JSON fallback would
    /// build (and keep, for as long as a sequence holds the event) the whole
    /// serialised event for each file event a rule looks at. `None`: not
    /// one of these paths.
    fn visit_file(&self, path: &str, f: &mut dyn FnMut(Value<'_>) -> bool) -> Option<bool> {
        let file = self.file.as_ref();
        let original = file.and_then(|x| x.ext.as_ref()).map(|e| &e.original);
        Some(match path {
            "file.path" => visit_opt(file.and_then(|x| x.path.as_deref()), f),
            "file.name" => visit_opt(file.and_then(|x| x.name.as_deref()), f),
            "file.directory" => visit_opt(file.and_then(|x| x.directory.as_deref()), f),
            "file.extension" => visit_opt(file.and_then(|x| x.extension.as_deref()), f),
            "file.Ext.original.path" => visit_opt(original.map(|o| o.path.as_str()), f),
            "file.Ext.original.name" => visit_opt(original.map(|o| o.name.as_str()), f),
            // Serialised only when true.
            "file.path_incomplete" => {
                file.is_some_and(|x| x.path_incomplete && f(Value::Bool(true)))
            }
            _ => return None,
        })
    }
}

/// The paths [`EcsEvent::visit_file`] answers.
#[cfg(test)]
const FILE_PATHS: [&str; 7] = [
    "file.path",
    "file.name",
    "file.directory",
    "file.extension",
    "file.Ext.original.path",
    "file.Ext.original.name",
    "file.path_incomplete",
];

/// The paths [`EcsEvent::visit_session_and_runtime`] answers.
#[cfg(test)]
const SESSION_AND_RUNTIME_PATHS: [&str; 16] = [
    "host.id",
    "process.entry_leader.entity_id",
    "process.session_leader.entity_id",
    "process.group_leader.entity_id",
    "process.entry_leader.same_as_process",
    "process.session_leader.same_as_process",
    "process.group_leader.same_as_process",
    "process.entry_leader.pid",
    "process.session_leader.pid",
    "process.group_leader.pid",
    "process.entry_leader.entry_meta.type",
    "container.security_context.privileged",
    "container.name",
    "container.image.name",
    "orchestrator.namespace",
    "orchestrator.resource.name",
];

fn visit_all_static(items: &[&'static str], f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    items.iter().any(|s| f(Value::Str(s)))
}

/// Converts kernel boot-time nanoseconds to wall-clock time. The offset
/// (wall clock minus CLOCK_BOOTTIME) is measured once at start.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    boot_wall: SystemTime,
}

impl BootClock {
    pub fn now() -> BootClock {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let since_boot = Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.clamp(0, 999_999_999) as u32,
        );
        BootClock {
            boot_wall: SystemTime::now()
                .checked_sub(since_boot)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }

    /// Wall-clock time of a `bpf_ktime_get_boot_ns()` reading.
    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        self.boot_wall + Duration::from_nanos(boot_ns)
    }

    /// Nanoseconds since boot now (the same clock the kernel stamps with).
    pub fn boot_ns_now() -> u64 {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        ts.tv_sec.max(0) as u64 * 1_000_000_000 + ts.tv_nsec.max(0) as u64
    }
}

/// An event with every field the sensor can emit set: the list of fields
/// the sensor produces (`rules::fields`, `sensor rules check`) is derived
/// from its serialised form, so it follows the document type instead of a
/// hand list. A test checks that no field of the type is left out here
/// (`rules::fields::tests::the_example_sets_every_field`).
pub fn every_field_example() -> EcsEvent {
    let text = || Some("x".to_owned());
    let id = || IdField { id: "0".into() };
    let shared = || Some(Arc::<str>::from("x"));
    let leader = |entry: bool| LeaderFields {
        pid: 1,
        name: shared(),
        executable: shared(),
        args: Some(vec!["x".to_owned()].into()),
        args_count: Some(1),
        entity_id: shared(),
        start: text(),
        working_directory: shared(),
        interactive: Some(true),
        user: Some(id()),
        group: Some(id()),
        same_as_process: true,
        entry_meta: entry.then_some(EntryMeta { entry_type: "init" }),
    };
    let process = ProcessFields {
        pid: 1,
        name: "x".into(),
        executable: text(),
        args: vec!["x".into()],
        args_count: 1,
        command_line: "x".into(),
        args_truncated: true,
        interactive: Some(true),
        entity_id: text(),
        start: text(),
        working_directory: text(),
        tty: Some(Tty::from_kernel_dev(1)),
        exit_code: Some(0),
        ext: Some(ProcessExt {
            execve_filename: "x".into(),
        }),
        parent: Some(ParentFields {
            pid: 1,
            name: shared(),
            executable: shared(),
            args: Some(vec!["x".to_owned()].into()),
            args_count: Some(1),
            command_line: text(),
            interactive: Some(true),
            entity_id: shared(),
            start: text(),
            working_directory: shared(),
        }),
        entry_leader: Some(leader(true)),
        session_leader: Some(leader(false)),
        group_leader: Some(leader(false)),
    };
    let host = HostFields {
        name: "x".into(),
        id: text(),
        os: HostOs { os_type: "linux" },
    };
    let mut ev = EcsEvent::new(
        Action::FileRename,
        SystemTime::UNIX_EPOCH,
        "x".into(),
        process,
        host,
        0,
        0,
    );
    ev.container = Some(ContainerFields {
        id: "x".into(),
        runtime: Some("docker"),
        name: text(),
        image: Some(ContainerImage {
            name: "x".into(),
            tag: vec!["x".into()],
        }),
        security_context: Some(SecurityContext { privileged: true }),
    });
    ev.orchestrator = Some(OrchestratorFields {
        orchestrator_type: "kubernetes",
        namespace: text(),
        resource: OrchestratorResource {
            resource_type: "pod",
            id: text(),
            name: text(),
        },
    });
    ev.sensor = Some(SensorFields {
        escaped_fields: vec!["x".into()],
    });
    let mut file = FileFields::from_path("/x.y");
    file.ext = Some(FileExt {
        original: FileOriginal {
            path: "/x".into(),
            name: "x".into(),
        },
    });
    file.path_incomplete = true;
    ev.file = Some(file);
    let endpoint = || crate::network::fields::Endpoint {
        ip: "x".into(),
        port: Some(1),
    };
    ev.source = Some(endpoint());
    ev.destination = Some(endpoint());
    ev.network = Some(crate::network::fields::NetworkFields {
        direction: "x",
        transport: "x",
        network_type: "x",
    });
    ev
}

/// A plain exec event (`sh -c …` under nginx) for unit tests.
#[cfg(test)]
pub(crate) fn sample_exec_event(pid: u32, args: Vec<String>) -> EcsEvent {
    let process = ProcessFields {
        pid,
        name: "sh".into(),
        executable: Some("/bin/sh".into()),
        args_count: args.len() as u32,
        command_line: command_line(&args),
        args,
        interactive: Some(false),
        parent: Some(ParentFields {
            pid: 1,
            name: Some("nginx".into()),
            interactive: Some(false),
            ..ParentFields::default()
        }),
        ..ProcessFields::default()
    };
    let host = HostFields {
        name: "node-1".into(),
        id: None,
        os: HostOs { os_type: "linux" },
    };
    EcsEvent::new(
        Action::Exec,
        SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        "e1".into(),
        process,
        host,
        33,
        33,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EcsEvent {
        sample_exec_event(42, vec!["sh".into(), "-c".into(), "id".into()])
    }

    #[test]
    fn native_and_json_views_agree_on_every_known_field() {
        let mut ev = event();
        ev.container = Some(ContainerFields {
            id: "a".repeat(64),
            runtime: Some("containerd"),
            ..ContainerFields::default()
        });
        let json = serde_json::to_value(&ev).expect("json");
        for field in EcsField::ALL {
            let r = FieldRef::new(field.path());
            let mut native = Vec::new();
            ev.visit(&r, &mut |v| {
                native.push(format!("{v:?}"));
                false
            });
            let mut generic = Vec::new();
            json.visit(&r, &mut |v| {
                generic.push(format!("{v:?}"));
                false
            });
            assert_eq!(native, generic, "field {}", field.path());
        }
    }

    /// `EcsEvent::visit_file`, `EcsEvent::visit_session_and_runtime`.
    type TypedLookup = fn(&EcsEvent, &str, &mut dyn FnMut(Value<'_>) -> bool) -> Option<bool>;

    /// The values a typed lookup gives for `path` (it must know the path)
    /// and those the event's JSON gives, each as debug text.
    fn both_views(
        ev: &EcsEvent,
        json: &serde_json::Value,
        path: &str,
        typed: TypedLookup,
    ) -> (Vec<String>, Vec<String>) {
        let mut native = Vec::new();
        let known = typed(ev, path, &mut |v| {
            native.push(format!("{v:?}"));
            false
        });
        assert!(known.is_some(), "the typed lookup knows {path}");
        let mut generic = Vec::new();
        json.visit(&FieldRef::new(path), &mut |v| {
            generic.push(format!("{v:?}"));
            false
        });
        (native, generic)
    }

    #[test]
    fn native_and_json_views_agree_on_session_and_runtime_fields() {
        let full = every_field_example();
        let mut partial = event();
        partial.container = Some(ContainerFields {
            id: "c".into(),
            ..ContainerFields::default()
        });
        for ev in [full, partial, event()] {
            let json = serde_json::to_value(&ev).expect("json");
            for path in SESSION_AND_RUNTIME_PATHS {
                let (native, generic) =
                    both_views(&ev, &json, path, EcsEvent::visit_session_and_runtime);
                assert_eq!(native, generic, "field {path}");
            }
        }
        // The example has every one of them.
        let full = every_field_example();
        for path in SESSION_AND_RUNTIME_PATHS {
            assert!(full.visit(&FieldRef::new(path), &mut |_| true), "{path}");
        }
    }

    #[test]
    fn native_and_json_views_agree_on_file_fields() {
        let file_event = |action, file: Option<FileFields>| {
            let base = event();
            let mut ev = EcsEvent::new(
                action,
                SystemTime::UNIX_EPOCH,
                "f".into(),
                base.process.clone(),
                base.host.clone(),
                0,
                0,
            );
            ev.file = file;
            ev
        };
        let mut renamed = FileFields::from_path("/tmp/new.sh");
        renamed.ext = Some(FileExt {
            original: FileOriginal {
                path: "/tmp/old.txt".into(),
                name: "old.txt".into(),
            },
        });
        let incomplete = FileFields {
            name: Some("x".into()),
            path_incomplete: true,
            ..FileFields::default()
        };
        let cases = [
            file_event(Action::FileRename, Some(renamed)),
            file_event(
                Action::FileCreation,
                Some(FileFields::from_path("/etc/cron.d/job")),
            ),
            file_event(
                Action::FileDeletion,
                Some(FileFields::from_path("/.bashrc")),
            ),
            file_event(Action::FileOpen, Some(incomplete)),
            event(),
        ];
        let mut answered = std::collections::HashSet::new();
        for ev in &cases {
            let json = serde_json::to_value(ev).expect("json");
            for path in FILE_PATHS {
                let (native, generic) = both_views(ev, &json, path, EcsEvent::visit_file);
                assert_eq!(native, generic, "field {path}");
                if !native.is_empty() {
                    answered.insert(path);
                }
            }
            // Through the document's lookup, without building the JSON.
            for path in FILE_PATHS {
                ev.visit(&FieldRef::new(path), &mut |_| false);
            }
            assert!(ev.json.get().is_none());
        }
        // Every path has a value in some case.
        assert_eq!(answered.len(), FILE_PATHS.len());
    }

    #[test]
    fn unknown_fields_fall_back_to_json() {
        let mut ev = event();
        ev.process.tty = Some(Tty::from_kernel_dev((136 << 20) | 5));
        let r = FieldRef::new("process.tty.char_device.minor");
        let mut seen = Vec::new();
        ev.visit(&r, &mut |v| {
            seen.push(format!("{v:?}"));
            false
        });
        assert_eq!(seen, vec!["Int(5)".to_owned()]);
    }

    #[test]
    fn file_fields_split_the_path() {
        let f = FileFields::from_path("/etc/cron.d/job.sh");
        assert_eq!(f.name.as_deref(), Some("job.sh"));
        assert_eq!(f.directory.as_deref(), Some("/etc/cron.d"));
        assert_eq!(f.extension.as_deref(), Some("sh"));
        let f = FileFields::from_path("/root/.bash_history");
        assert_eq!(f.name.as_deref(), Some(".bash_history"));
        assert_eq!(f.extension, None);
        let f = FileFields::from_path("/a.tar.gz");
        assert_eq!(f.directory.as_deref(), Some("/"));
        assert_eq!(f.extension.as_deref(), Some("gz"));
    }

    #[test]
    fn file_events_are_d4c_shaped() {
        let mut ev = event();
        ev = EcsEvent::new(
            Action::FileOpen,
            SystemTime::UNIX_EPOCH,
            "e2".into(),
            ev.process.clone(),
            ev.host.clone(),
            0,
            0,
        );
        ev.file = Some(FileFields::from_path("/etc/ld.so.preload"));
        let json = serde_json::to_value(&ev).expect("json");
        assert_eq!(json["event"]["category"][0], "file");
        assert_eq!(json["event"]["type"][0], "change");
        assert_eq!(json["event"]["action"], "open");
        assert_eq!(json["file"]["name"], "ld.so.preload");
        let r = FieldRef::new("file.path");
        let mut seen = Vec::new();
        ev.visit(&r, &mut |v| {
            seen.push(format!("{v:?}"));
            false
        });
        assert_eq!(seen, vec!["Str(\"/etc/ld.so.preload\")".to_owned()]);
    }

    #[test]
    fn timestamps_are_rfc3339_nanos() {
        let ev = event();
        assert_eq!(ev.timestamp, "2023-11-14T22:13:20.123456789Z");
    }
}
