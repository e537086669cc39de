//! Which fields a rule reads that this sensor never produces: reported by
//! `sensor rules check` beside the event sources, so a rule whose condition
//! hangs on `process.Ext.foo` is visible as such rather than silently never
//! firing.
//!
//! The produced fields are derived from the document type itself: every
//! leaf path of [`crate::ecs::every_field_example`] serialised, the same
//! serialisation rules and the output see. A rule field is produced when it
//! is one of those paths or an object above one (`process.parent` exists
//! when `process.parent.pid` does).
//!
//! Reported, not refused: a rule may read a field only in a branch that is
//! not needed to fire (`a or b`, `not ...`), so a missing field does not
//! make a rule unsupported by itself.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use crate::eql::ast::{Expr, JoinKey, Operand, Query, SequenceStep, Statement};
use crate::eql::parser::parse_statement;

static PRODUCED: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let mut out = BTreeSet::new();
    let json = serde_json::to_value(crate::ecs::every_field_example()).unwrap_or_default();
    leaves(&json, String::new(), &mut out);
    out
});

fn leaves(v: &serde_json::Value, path: String, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(child, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// Every field path the sensor can put in an event (objects included).
pub fn produced() -> &'static BTreeSet<String> {
    &PRODUCED
}

/// [`produced`] as a hash set: what the native event asks for each lookup
/// of a field it does not model (a rule's step reading `process.env_vars`
/// asks it for every event the step is a candidate for).
static PRODUCED_HASHED: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| PRODUCED.iter().map(String::as_str).collect());

/// Whether the sensor can put `path` in an event ([`produced`] contains it).
pub fn is_produced(path: &str) -> bool {
    PRODUCED_HASHED.contains(path)
}

/// The fields `query` reads that the sensor never produces, sorted, each
/// once; empty for a query that does not parse (reported elsewhere).
pub fn never_produced(query: &str) -> Vec<String> {
    let Ok(statement) = parse_statement(query) else {
        return Vec::new();
    };
    let mut used = BTreeSet::new();
    match &statement {
        Statement::Event(q) => query_fields(q, &mut used),
        Statement::Sequence(seq) => {
            steps_fields(&seq.by, seq.steps.iter().chain(seq.until.iter()), &mut used)
        }
        Statement::Sample(sample) => steps_fields(&sample.by, sample.filters.iter(), &mut used),
    }
    used.into_iter()
        .filter(|f| !produced().contains(f))
        .collect()
}

/// `"\tfields never produced: a, b"`, or nothing: for `rules check` lines.
pub fn note(query: &str) -> String {
    let missing = never_produced(query);
    if missing.is_empty() {
        String::new()
    } else {
        format!("\tfields never produced: {}", missing.join(", "))
    }
}

/// The shared keys, and each step's (or sample filter's) query and keys.
fn steps_fields<'a>(
    by: &[JoinKey],
    steps: impl Iterator<Item = &'a SequenceStep>,
    out: &mut BTreeSet<String>,
) {
    out.extend(by.iter().map(|k| k.path.clone()));
    for step in steps {
        query_fields(&step.query, out);
        out.extend(step.by.iter().map(|k| k.path.clone()));
    }
}

fn query_fields(q: &Query, out: &mut BTreeSet<String>) {
    expr_fields(&q.condition, out);
}

fn expr_fields(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| expr_fields(x, out)),
        Expr::Not(x) => expr_fields(x, out),
        Expr::Const(_) => {}
        Expr::Compare { left, right, .. } => {
            operand_fields(left, out);
            operand_fields(right, out);
        }
        Expr::In { left, values, .. } => {
            operand_fields(left, out);
            values.iter().for_each(|v| operand_fields(v, out));
        }
        Expr::Like { left, .. } | Expr::Regex { left, .. } | Expr::Test(left) => {
            operand_fields(left, out)
        }
    }
}

fn operand_fields(o: &Operand, out: &mut BTreeSet<String>) {
    match o {
        Operand::Field(f) => {
            out.insert(f.path.clone());
        }
        Operand::Lit(_) => {}
        Operand::Call { args, .. } => args.iter().for_each(|a| operand_fields(a, out)),
        Operand::Arith { left, right, .. } => {
            operand_fields(left, out);
            operand_fields(right, out);
        }
        Operand::Neg(x, _) => operand_fields(x, out),
        Operand::Cond(x, _) => expr_fields(x, out),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_d4c_session_and_container_fields_are_produced() {
        for f in [
            "process.entry_leader.entry_meta.type",
            "process.entry_leader.same_as_process",
            "process.session_leader.pid",
            "process.group_leader.entity_id",
            "container.security_context.privileged",
            "container.image.name",
            "container.image.tag",
            "orchestrator.namespace",
            "orchestrator.resource.name",
            "process.parent",
            "file.Ext.original.path",
            "process.Ext.execve_filename",
            "@timestamp",
        ] {
            assert!(produced().contains(f), "{f}");
        }
        assert!(!produced().contains("process.Ext.ancestry"));
    }

    #[test]
    fn fields_a_rule_reads_and_the_sensor_never_writes() {
        let q = r#"process where process.name == "sh" and
            (process.Ext.token.integrity_level_name == "high" or
             length(process.pe.original_file_name) > 0) and
            not user.name in ("root", process.parent.name)"#;
        assert_eq!(
            never_produced(q),
            [
                "process.Ext.token.integrity_level_name",
                "process.pe.original_file_name",
                "user.name"
            ]
        );
        assert!(never_produced(
            r#"process where process.entry_leader.same_as_process == false and container.id like "*""#
        )
        .is_empty());
        let seq = r#"sequence by process.entity_id with maxspan=1s
            [process where process.name == "curl"] by host.hostname
            [file where file.path : "/tmp/*"] by host.hostname"#;
        assert_eq!(never_produced(seq), ["host.hostname"]);
        assert_eq!(note("not eql"), "");
    }

    /// Records every field name a struct serialises *or skips*, so a field
    /// left unset in the example is caught: `skip_serializing_if` makes
    /// serde call `skip_field` with its name.
    mod recorder {
        use serde::ser::{self, Serialize};
        use std::collections::BTreeSet;

        #[derive(Debug)]
        pub struct Err(String);
        impl std::fmt::Display for Err {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Err {}
        impl ser::Error for Err {
            fn custom<T: std::fmt::Display>(msg: T) -> Self {
                Err(msg.to_string())
            }
        }

        /// Field names (struct-qualified) that were skipped and written.
        #[derive(Default)]
        pub struct Seen {
            pub written: BTreeSet<String>,
            pub skipped: BTreeSet<String>,
        }

        pub struct Rec<'a>(pub &'a mut Seen);

        macro_rules! leaf {
            ($($m:ident: $t:ty),*) => {
                $(fn $m(self, _v: $t) -> Result<(), Err> { Ok(()) })*
            };
        }

        impl<'a> ser::Serializer for Rec<'a> {
            type Ok = ();
            type Error = Err;
            type SerializeSeq = Self;
            type SerializeTuple = Self;
            type SerializeTupleStruct = Self;
            type SerializeTupleVariant = Self;
            type SerializeMap = Self;
            type SerializeStruct = Named<'a>;
            type SerializeStructVariant = Self;
            leaf!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
                serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
                serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64,
                serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
                serialize_unit_struct: &'static str);
            fn serialize_none(self) -> Result<(), Err> {
                Ok(())
            }
            fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Err> {
                v.serialize(self)
            }
            fn serialize_unit(self) -> Result<(), Err> {
                Ok(())
            }
            fn serialize_unit_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
            ) -> Result<(), Err> {
                Ok(())
            }
            fn serialize_newtype_struct<T: ?Sized + Serialize>(
                self,
                _: &'static str,
                v: &T,
            ) -> Result<(), Err> {
                v.serialize(self)
            }
            fn serialize_newtype_variant<T: ?Sized + Serialize>(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                v: &T,
            ) -> Result<(), Err> {
                v.serialize(self)
            }
            fn serialize_seq(self, _: Option<usize>) -> Result<Self, Err> {
                Ok(self)
            }
            fn serialize_tuple(self, _: usize) -> Result<Self, Err> {
                Ok(self)
            }
            fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Err> {
                Ok(self)
            }
            fn serialize_tuple_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self, Err> {
                Ok(self)
            }
            fn serialize_map(self, _: Option<usize>) -> Result<Self, Err> {
                Ok(self)
            }
            fn serialize_struct(self, name: &'static str, _: usize) -> Result<Named<'a>, Err> {
                Ok(Named(self.0, name))
            }
            fn serialize_struct_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self, Err> {
                Ok(self)
            }
        }

        pub struct Named<'a>(&'a mut Seen, &'static str);

        impl ser::SerializeStruct for Named<'_> {
            type Ok = ();
            type Error = Err;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Err> {
                self.0.written.insert(format!("{}.{key}", self.1));
                v.serialize(Rec(self.0))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), Err> {
                self.0.skipped.insert(format!("{}.{key}", self.1));
                Ok(())
            }
            fn end(self) -> Result<(), Err> {
                Ok(())
            }
        }

        macro_rules! compound {
            ($tr:ident, $m:ident) => {
                impl ser::$tr for Rec<'_> {
                    type Ok = ();
                    type Error = Err;
                    fn $m<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Err> {
                        v.serialize(Rec(self.0))
                    }
                    fn end(self) -> Result<(), Err> {
                        Ok(())
                    }
                }
            };
        }
        compound!(SerializeSeq, serialize_element);
        compound!(SerializeTuple, serialize_element);
        compound!(SerializeTupleStruct, serialize_field);
        compound!(SerializeTupleVariant, serialize_field);

        impl ser::SerializeMap for Rec<'_> {
            type Ok = ();
            type Error = Err;
            fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> Result<(), Err> {
                k.serialize(Rec(self.0))
            }
            fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Err> {
                v.serialize(Rec(self.0))
            }
            fn end(self) -> Result<(), Err> {
                Ok(())
            }
        }

        impl ser::SerializeStructVariant for Rec<'_> {
            type Ok = ();
            type Error = Err;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                _: &'static str,
                v: &T,
            ) -> Result<(), Err> {
                v.serialize(Rec(self.0))
            }
            fn end(self) -> Result<(), Err> {
                Ok(())
            }
        }
    }

    #[test]
    fn the_example_sets_every_field() {
        use serde::Serialize;
        let mut seen = recorder::Seen::default();
        crate::ecs::every_field_example()
            .serialize(recorder::Rec(&mut seen))
            .unwrap();
        // A field skipped somewhere must be written somewhere else in the
        // example (leader structs appear with and without `entry_meta`).
        let never: Vec<_> = seen.skipped.difference(&seen.written).collect();
        assert!(
            never.is_empty(),
            "fields the example leaves unset: {never:?}"
        );
        assert!(seen.written.len() > 60, "{}", seen.written.len());
    }
}
