//! Struct member offsets from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF emits no CO-RE relocations yet, and bindings generated from one
//! kernel's headers break on another (aya issue 722). So the programs carry
//! no offsets at all: at load time we read the few member offsets they need
//! from the kernel's own type information and hand them over as a global.
//!
//! Only what that needs is parsed: the type table (to walk every kind's
//! variable-length tail correctly), struct/union names and members, and the
//! string table. Anonymous struct/union members are searched through, since
//! the kernel nests fields in them (`mm_struct`'s fields live in an unnamed
//! struct, for instance). The format is documented in the kernel's
//! `Documentation/bpf/btf.rst`.

use std::collections::HashMap;
use std::path::Path;

/// Why BTF could not be read or a member could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF at {path} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("the running kernel has no struct {0} in its BTF")]
    NoStruct(String),
    #[error("the running kernel's struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
}

const BTF_MAGIC: u16 = 0xeb9f;

// BTF kinds (Documentation/bpf/btf.rst).
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

#[derive(Debug, Clone)]
struct Type {
    name_off: u32,
    kind: u32,
    /// `size` for sized kinds, referenced type id for modifiers.
    size_or_type: u32,
    members: Vec<Member>,
}

/// The parsed type table of one BTF blob.
pub struct KernelBtf {
    /// Index = type id (0 is `void`).
    types: Vec<Type>,
    strings: Vec<u8>,
    /// Named structs/unions: name → first type id with that name.
    by_name: HashMap<String, u32>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, BtfError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| BtfError::Malformed(format!("truncated at byte {at}")))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| BtfError::Malformed(format!("truncated at byte {at}")))
}

impl KernelBtf {
    /// Reads the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let bytes = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses a raw (little-endian) BTF blob.
    pub fn parse(b: &[u8]) -> Result<Self, BtfError> {
        if u16_at(b, 0)? != BTF_MAGIC {
            return Err(BtfError::Malformed(
                "bad magic (not little-endian BTF)".into(),
            ));
        }
        let hdr_len = u32_at(b, 4)? as usize;
        let type_off = u32_at(b, 8)? as usize;
        let type_len = u32_at(b, 12)? as usize;
        let str_off = u32_at(b, 16)? as usize;
        let str_len = u32_at(b, 20)? as usize;
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= b.len() => Ok(&b[s..e]),
                _ => Err(BtfError::Malformed("section out of bounds".into())),
            }
        };
        let type_sec = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?.to_vec();

        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
        }];
        let mut at = 0;
        while at < type_sec.len() {
            let name_off = u32_at(type_sec, at)?;
            let info = u32_at(type_sec, at + 4)?;
            let size_or_type = u32_at(type_sec, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let tail = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let raw = u32_at(type_sec, m + 8)?;
                        members.push(Member {
                            name_off: u32_at(type_sec, m)?,
                            type_id: u32_at(type_sec, m + 4)?,
                            bit_offset: if kind_flag { raw & 0x00ff_ffff } else { raw },
                        });
                    }
                    vlen * 12
                }
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => {
                    return Err(BtfError::Malformed(format!(
                        "unknown BTF kind {other} for type {}",
                        types.len()
                    )))
                }
            };
            at += tail;
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                members,
            });
        }
        let mut btf = KernelBtf {
            types,
            strings,
            by_name: HashMap::new(),
        };
        let mut by_name = HashMap::new();
        for (id, t) in btf.types.iter().enumerate() {
            if (t.kind == KIND_STRUCT || t.kind == KIND_UNION) && t.name_off != 0 {
                by_name
                    .entry(btf.name(t.name_off).to_owned())
                    .or_insert(id as u32);
            }
        }
        btf.by_name = by_name;
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = memchr::memchr(0, rest).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// Follows typedef/const/volatile/restrict/type-tag to the real type.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Some(t),
            }
        }
        None
    }

    fn struct_type(&self, name: &str) -> Result<&Type, BtfError> {
        self.by_name
            .get(name)
            .and_then(|id| self.types.get(*id as usize))
            .ok_or_else(|| BtfError::NoStruct(name.to_owned()))
    }

    /// Size in bytes of `struct name`.
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        Ok(self.struct_type(name)?.size_or_type)
    }

    /// Bit offset of `member` within `t`, searching anonymous members.
    fn member_bits(&self, t: &Type, member: &str) -> Option<(u32, u32)> {
        for m in &t.members {
            if m.name_off != 0 {
                if self.name(m.name_off) == member {
                    return Some((m.bit_offset, m.type_id));
                }
            } else if let Some(inner) = self.resolve(m.type_id) {
                if inner.kind == KIND_STRUCT || inner.kind == KIND_UNION {
                    if let Some((bits, ty)) = self.member_bits(inner, member) {
                        return Some((m.bit_offset + bits, ty));
                    }
                }
            }
        }
        None
    }

    /// Byte offset of a member path such as `"ns.inum"` inside `struct strukt`;
    /// every step but the last must be an embedded struct or union.
    pub fn offset_of(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let missing = || BtfError::NoMember {
            strukt: strukt.to_owned(),
            member: path.to_owned(),
        };
        let mut t = self.struct_type(strukt)?;
        let mut bits = 0;
        let mut steps = path.split('.').peekable();
        while let Some(step) = steps.next() {
            let (b, ty) = self.member_bits(t, step).ok_or_else(missing)?;
            bits += b;
            if steps.peek().is_some() {
                t = self
                    .resolve(ty)
                    .filter(|t| t.kind == KIND_STRUCT || t.kind == KIND_UNION)
                    .ok_or_else(missing)?;
            }
        }
        if bits % 8 != 0 {
            return Err(BtfError::Malformed(format!(
                "{strukt}.{path} is a bitfield, not byte-addressable"
            )));
        }
        Ok(bits / 8)
    }

    /// The first of `names` that `struct strukt` has (fields renamed across
    /// kernel versions, e.g. `real_start_time` → `start_boottime`).
    pub fn offset_of_any(&self, strukt: &str, names: &[&str]) -> Result<u32, BtfError> {
        let mut last = None;
        for name in names {
            match self.offset_of(strukt, name) {
                Ok(off) => return Ok(off),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| BtfError::NoMember {
            strukt: strukt.to_owned(),
            member: names.join("|"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny BTF blob: `struct outer { int a; union { int b; struct
    /// { long c; } ; }; struct inner in; }` with `struct inner { int x; int y; }`.
    fn blob() -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut name = |s: &str| {
            let off = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            off
        };
        let (n_int, n_outer, n_a, n_b, n_c, n_inner, n_in, n_x, n_y) = (
            name("int"),
            name("outer"),
            name("a"),
            name("b"),
            name("c"),
            name("inner"),
            name("in"),
            name("x"),
            name("y"),
        );
        let mut t = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        // 1: int
        push(&[n_int, KIND_INT << 24, 4, 32]);
        // 2: anonymous struct { long c; } (c at bit 0), size 8
        push(&[0, (KIND_STRUCT << 24) | 1, 8, n_c, 1, 0]);
        // 3: anonymous union { int b; struct 2; }
        push(&[0, (KIND_UNION << 24) | 2, 8, n_b, 1, 0, 0, 2, 0]);
        // 4: struct inner { int x @0; int y @32 }
        push(&[n_inner, (KIND_STRUCT << 24) | 2, 8, n_x, 1, 0, n_y, 1, 32]);
        // 5: typedef of inner (to check resolution through typedefs)
        push(&[n_inner, KIND_TYPEDEF << 24, 4]);
        // 6: struct outer { int a @0; union 3 @64; inner in @128 }
        push(&[
            n_outer,
            (KIND_STRUCT << 24) | 3,
            24,
            n_a,
            1,
            0,
            0,
            3,
            64,
            n_in,
            5,
            128,
        ]);
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn finds_direct_anonymous_and_nested_members() {
        let btf = KernelBtf::parse(&blob()).expect("parse");
        assert_eq!(btf.offset_of("outer", "a").expect("a"), 0);
        assert_eq!(btf.offset_of("outer", "b").expect("b"), 8);
        assert_eq!(btf.offset_of("outer", "c").expect("c"), 8);
        assert_eq!(btf.offset_of("outer", "in.y").expect("in.y"), 20);
        assert_eq!(btf.struct_size("inner").expect("size"), 8);
        assert!(matches!(
            btf.offset_of("outer", "zz"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.offset_of("nope", "a"),
            Err(BtfError::NoStruct(_))
        ));
        assert_eq!(
            btf.offset_of_any("outer", &["zz", "in.x"]).expect("any"),
            16
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(KernelBtf::parse(&[]).is_err());
        assert!(KernelBtf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0]).is_err());
        let mut b = blob();
        b.truncate(40);
        assert!(KernelBtf::parse(&b).is_err());
    }

    #[test]
    fn reads_the_running_kernel() {
        // Every machine this project runs on has BTF (the sensor needs it).
        let btf = KernelBtf::from_sys_fs().expect("kernel BTF");
        let parent = btf
            .offset_of("task_struct", "real_parent")
            .expect("real_parent");
        let tgid = btf.offset_of("task_struct", "tgid").expect("tgid");
        assert!(parent > tgid, "real_parent follows tgid in task_struct");
        assert!(btf.offset_of("mm_struct", "arg_start").expect("arg_start") > 0);
    }
}
