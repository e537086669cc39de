//! The one evaluation interface shared by the live sensor's native event and
//! generic ECS JSON.
//!
//! Why a visitor and not `fn get(&self, path) -> Vec<Value>`: a multi-valued
//! field (`process.args`) is tested element by element and the first element
//! that satisfies a predicate decides the verdict (Elasticsearch's any-element
//! semantics). A visitor lets the document hand out borrowed values one at a
//! time and lets the predicate stop the walk early, with no allocation per
//! event. Field names are resolved once, when a rule is compiled, into a
//! [`FieldRef`]; a native event answers with a `match` on
//! [`FieldRef::known`] instead of hashing or comparing path strings.

use serde_json::Value as Json;

/// One value of a field, borrowed from the document. `null` is never visited:
/// a null has no value in Elasticsearch and every comparison on it is false.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A string (keyword) value.
    Str(&'a str),
    /// An integer value.
    Int(i64),
    /// A floating-point value (also used for JSON integers beyond `i64`).
    Float(f64),
    /// A boolean value.
    Bool(bool),
}

/// A document that rules can be evaluated against.
pub trait Document {
    /// Calls `f` with every value of `field` (each element of an array, in
    /// order; arrays of objects flatten) until `f` returns `true`.
    ///
    /// Returns `true` if and only if `f` returned `true` (the walk stopped
    /// early because a value matched). A missing field, `null` or an empty
    /// array calls `f` zero times and returns `false`.
    fn visit(&self, field: &FieldRef, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool;
}

macro_rules! ecs_fields {
    ($($variant:ident => $path:literal,)*) => {
        /// The ECS fields the live sensor's native event provides. A rule's
        /// field path is mapped to one of these at compile time so that the
        /// native event can answer with a `match` (no string hashing per event).
        /// Fields outside this list still work: [`FieldRef::known`] is `None`
        /// and the document resolves the dotted path itself.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EcsField {
            $(
                #[doc = concat!("`", $path, "`")]
                $variant,
            )*
        }

        impl EcsField {
            /// Every known field, in declaration order.
            pub const ALL: &'static [EcsField] = &[$(EcsField::$variant,)*];

            /// The dotted ECS path of this field.
            pub fn path(self) -> &'static str {
                match self {
                    $(EcsField::$variant => $path,)*
                }
            }

            /// The known field for a dotted path, if any.
            pub fn from_path(path: &str) -> Option<EcsField> {
                match path {
                    $($path => Some(EcsField::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

ecs_fields! {
    Timestamp => "@timestamp",
    EventCategory => "event.category",
    EventType => "event.type",
    EventAction => "event.action",
    EventKind => "event.kind",
    EventId => "event.id",
    EventIngested => "event.ingested",
    ProcessName => "process.name",
    ProcessExecutable => "process.executable",
    ProcessArgs => "process.args",
    ProcessArgsCount => "process.args_count",
    ProcessCommandLine => "process.command_line",
    ProcessPid => "process.pid",
    ProcessInteractive => "process.interactive",
    ProcessWorkingDirectory => "process.working_directory",
    ProcessEntityId => "process.entity_id",
    ProcessStart => "process.start",
    ProcessParentName => "process.parent.name",
    ProcessParentExecutable => "process.parent.executable",
    ProcessParentArgs => "process.parent.args",
    ProcessParentArgsCount => "process.parent.args_count",
    ProcessParentCommandLine => "process.parent.command_line",
    ProcessParentPid => "process.parent.pid",
    ProcessParentInteractive => "process.parent.interactive",
    ProcessParentEntityId => "process.parent.entity_id",
    ProcessParentWorkingDirectory => "process.parent.working_directory",
    UserId => "user.id",
    UserName => "user.name",
    GroupId => "group.id",
    GroupName => "group.name",
    ContainerId => "container.id",
    ContainerRuntime => "container.runtime",
    HostName => "host.name",
    HostOsType => "host.os.type",
}

/// A field reference resolved at rule-compile time: the dotted path plus the
/// [`EcsField`] it names, if the native event knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    path: Box<str>,
    known: Option<EcsField>,
}

impl FieldRef {
    /// Resolves `path` once.
    pub fn new(path: &str) -> FieldRef {
        FieldRef {
            path: path.into(),
            known: EcsField::from_path(path),
        }
    }

    /// The dotted path, e.g. `process.parent.name`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The known ECS field, for native documents.
    pub fn known(&self) -> Option<EcsField> {
        self.known
    }
}

/// Generic ECS JSON as a [`Document`]: nested objects, dotted keys
/// (`{"process.name": "sh"}`), or a mix (`{"process": {"parent.name": ..}}`);
/// arrays of objects flatten like Elasticsearch's object mapping does.
///
/// Nothing is precomputed: each visit walks the JSON tree along the path,
/// trying at every object each key that is a dot-prefix of the remaining
/// path. Where the same field is present both nested and dotted, all values
/// are visited (Elasticsearch indexes both as values of the same field).
#[derive(Debug, Clone, Copy)]
pub struct JsonDocument<'a> {
    root: &'a Json,
}

impl<'a> JsonDocument<'a> {
    /// Wraps a JSON value (normally an object) without copying it.
    pub fn new(root: &'a Json) -> JsonDocument<'a> {
        JsonDocument { root }
    }

    /// The wrapped JSON value.
    pub fn json(&self) -> &'a Json {
        self.root
    }
}

impl Document for JsonDocument<'_> {
    fn visit(&self, field: &FieldRef, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
        walk(self.root, field.path(), f)
    }
}

impl Document for Json {
    fn visit(&self, field: &FieldRef, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
        walk(self, field.path(), f)
    }
}

/// Field aliases, as an Elasticsearch mapping declares them
/// (`"type": "alias", "path": "<target>"`): a query that reads the alias
/// reads the target's values. Elasticsearch forbids values under an alias
/// path, so the document's own values there (if any) are not read.
#[derive(Debug, Clone, Default)]
pub struct FieldAliases {
    map: std::collections::HashMap<Box<str>, FieldRef>,
}

impl FieldAliases {
    /// No aliases.
    pub fn new() -> FieldAliases {
        FieldAliases::default()
    }

    /// Declares `alias` as another name of `target`. Aliases do not chain
    /// (Elasticsearch rejects an alias of an alias); the last declaration of
    /// an alias wins.
    pub fn insert(&mut self, alias: &str, target: &str) {
        self.map.insert(alias.into(), FieldRef::new(target));
    }

    /// The target of `path`, when it is an alias.
    pub fn target(&self, path: &str) -> Option<&FieldRef> {
        self.map.get(path)
    }

    /// Whether no alias is declared.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A document read through [`FieldAliases`].
#[derive(Debug, Clone, Copy)]
pub struct AliasedDocument<'a, D: ?Sized> {
    inner: &'a D,
    aliases: &'a FieldAliases,
}

impl<'a, D: Document + ?Sized> AliasedDocument<'a, D> {
    /// Reads `inner`, resolving `aliases` first.
    pub fn new(inner: &'a D, aliases: &'a FieldAliases) -> AliasedDocument<'a, D> {
        AliasedDocument { inner, aliases }
    }
}

impl<D: Document + ?Sized> Document for AliasedDocument<'_, D> {
    fn visit(&self, field: &FieldRef, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
        match self.aliases.target(field.path()) {
            Some(target) => self.inner.visit(target, f),
            None => self.inner.visit(field, f),
        }
    }
}

/// Walks `rest` (a non-empty dotted path) from `v`.
fn walk(v: &Json, rest: &str, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    match v {
        Json::Array(items) => items.iter().any(|item| walk(item, rest, f)),
        Json::Object(map) => {
            if let Some(child) = map.get(rest) {
                if emit(child, f) {
                    return true;
                }
            }
            for (i, b) in rest.bytes().enumerate() {
                if b == b'.' {
                    if let Some(child) = map.get(&rest[..i]) {
                        if walk(child, &rest[i + 1..], f) {
                            return true;
                        }
                    }
                }
            }
            false
        }
        _ => false,
    }
}

/// Visits the leaf values of `v`; objects are not values.
fn emit(v: &Json, f: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    match v {
        Json::Null | Json::Object(_) => false,
        Json::Bool(b) => f(Value::Bool(*b)),
        Json::String(s) => f(Value::Str(s)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                f(Value::Int(i))
            } else {
                match n.as_f64() {
                    Some(x) => f(Value::Float(x)),
                    None => false,
                }
            }
        }
        Json::Array(items) => items.iter().any(|item| emit(item, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(doc: &Json, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        JsonDocument::new(doc).visit(&FieldRef::new(path), &mut |v| {
            out.push(format!("{v:?}"));
            false
        });
        out
    }

    #[test]
    fn nested_dotted_and_mixed_paths_resolve() {
        let nested = json!({"process": {"parent": {"name": "nginx"}}});
        let dotted = json!({"process.parent.name": "nginx"});
        let mixed = json!({"process": {"parent.name": "nginx"}});
        let mixed2 = json!({"process.parent": {"name": "nginx"}});
        for doc in [&nested, &dotted, &mixed, &mixed2] {
            assert_eq!(values(doc, "process.parent.name"), vec!["Str(\"nginx\")"]);
        }
    }

    #[test]
    fn arrays_flatten_and_nulls_are_skipped() {
        let doc = json!({"process": {"args": ["a", null, ["b"], 3, true, {"x": 1}]},
                         "o": [{"k": "v1"}, {"k": ["v2", null]}, {"k": null}]});
        assert_eq!(
            values(&doc, "process.args"),
            vec!["Str(\"a\")", "Str(\"b\")", "Int(3)", "Bool(true)"]
        );
        assert_eq!(values(&doc, "o.k"), vec!["Str(\"v1\")", "Str(\"v2\")"]);
        assert_eq!(values(&doc, "process.args.x"), vec!["Int(1)"]);
        assert!(values(&doc, "missing.field").is_empty());
    }

    #[test]
    fn both_nested_and_dotted_values_are_visited() {
        let doc = json!({"a.b": "dotted", "a": {"b": "nested"}});
        let mut got = values(&doc, "a.b");
        got.sort();
        assert_eq!(got, vec!["Str(\"dotted\")", "Str(\"nested\")"]);
    }

    #[test]
    fn visitor_stops_early() {
        let doc = json!({"x": ["1", "2", "3"]});
        let mut seen = 0;
        let stopped = JsonDocument::new(&doc).visit(&FieldRef::new("x"), &mut |v| {
            seen += 1;
            v == Value::Str("2")
        });
        assert!(stopped);
        assert_eq!(seen, 2);
    }

    #[test]
    fn aliases_read_their_target_and_only_it() {
        let doc = json!({"event_type": "process", "event": {"category": "ignored"}, "x": 1});
        let mut aliases = FieldAliases::new();
        aliases.insert("event.category", "event_type");
        let aliased = AliasedDocument::new(&doc, &aliases);
        let mut got = Vec::new();
        aliased.visit(&FieldRef::new("event.category"), &mut |v| {
            got.push(format!("{v:?}"));
            false
        });
        assert_eq!(got, vec!["Str(\"process\")"]);
        // Other fields are read as they are.
        assert!(aliased.visit(&FieldRef::new("x"), &mut |v| v == Value::Int(1)));
        assert!(!aliased.visit(&FieldRef::new("missing"), &mut |_| true));
    }

    #[test]
    fn known_fields_round_trip() {
        for f in EcsField::ALL {
            assert_eq!(EcsField::from_path(f.path()), Some(*f));
        }
        assert_eq!(
            FieldRef::new("process.args").known(),
            Some(EcsField::ProcessArgs)
        );
        assert_eq!(FieldRef::new("file.path").known(), None);
    }
}
