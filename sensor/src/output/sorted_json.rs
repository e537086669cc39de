//! A `serde` serializer that writes compact JSON with every object's keys
//! in sorted order: the bytes `serde_json::to_value` followed by
//! `serde_json::to_writer` would give, without building the `Value` tree
//! (a map node per object and a `String` per string). It refuses (errors
//! out on) what the alert splice cannot take as is — dotted keys, the same
//! key twice, non-string map keys — and the caller then takes the general
//! path.

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{self, Serialize};
use serde_json::Error;

fn refuse(why: &str) -> Error {
    <Error as ser::Error>::custom(why)
}

pub type Fields = Vec<(Cow<'static, str>, Range<usize>)>;

/// Buffers kept from one event to the next (no allocation per object
/// once warm).
#[derive(Debug, Default)]
pub struct Pool {
    bufs: Vec<Vec<u8>>,
    fields: Vec<Fields>,
}

/// Serialises `value`, which must be a struct or map, and returns its
/// fields, sorted: (key, byte range of the value's JSON in `buf`).
pub fn fields<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    pool: &mut Pool,
) -> Result<Fields, Error> {
    let mut fields = Fields::new();
    value.serialize(TopLevel {
        buf,
        fields: &mut fields,
        key: None,
        pool,
    })?;
    sort_fields(&mut fields)?;
    Ok(fields)
}

fn dotted(k: &str) -> bool {
    k.split_once('.')
        .is_some_and(|(head, rest)| !head.is_empty() && !rest.is_empty())
}

fn push_field<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    fields: &mut Fields,
    key: Cow<'static, str>,
    value: &T,
    top_level: bool,
    pool: &mut Pool,
) -> Result<(), Error> {
    if dotted(&key) {
        return Err(refuse("dotted key"));
    }
    let alert_kind = top_level && key == "event";
    let start = buf.len();
    // The `event` object gets `kind: "alert"` as it is written.
    value.serialize(Writer(buf, alert_kind, pool))?;
    fields.push((key, start..buf.len()));
    Ok(())
}

fn sort_fields(fields: &mut Fields) -> Result<(), Error> {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    if fields.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(refuse("duplicate key"));
    }
    Ok(())
}

/// Writes one value; `.1`: an object written gets `kind: "alert"`.
struct Writer<'o>(&'o mut Vec<u8>, bool, &'o mut Pool);

/// An object: its fields written into a scratch buffer, then sorted
/// into `out`.
struct Nested<'o> {
    out: &'o mut Vec<u8>,
    pool: &'o mut Pool,
    scratch: Vec<u8>,
    fields: Fields,
    key: Option<String>,
    /// `{"variant":` written before, `}` after (struct variants).
    variant: bool,
    /// Set `kind` to `"alert"` (the alert's `event` object).
    alert_kind: bool,
}

impl<'o> Nested<'o> {
    fn new(
        out: &'o mut Vec<u8>,
        pool: &'o mut Pool,
        variant: bool,
        alert_kind: bool,
    ) -> Nested<'o> {
        let scratch = pool.bufs.pop().unwrap_or_default();
        let fields = pool.fields.pop().unwrap_or_default();
        Nested {
            out,
            pool,
            scratch,
            fields,
            key: None,
            variant,
            alert_kind,
        }
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        push_field(
            &mut self.scratch,
            &mut self.fields,
            key,
            value,
            false,
            self.pool,
        )
    }

    fn finish(mut self) -> Result<(), Error> {
        if self.alert_kind {
            self.fields.retain(|(k, _)| k != "kind");
            let start = self.scratch.len();
            self.scratch.extend_from_slice(b"\"alert\"");
            self.fields.push(("kind".into(), start..self.scratch.len()));
        }
        sort_fields(&mut self.fields)?;
        self.out.push(b'{');
        for (i, (k, r)) in self.fields.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            serde_json::to_writer(&mut *self.out, k.as_ref())?;
            self.out.push(b':');
            self.out.extend_from_slice(&self.scratch[r.clone()]);
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        let (mut scratch, mut fields) = (self.scratch, self.fields);
        scratch.clear();
        fields.clear();
        self.pool.bufs.push(scratch);
        self.pool.fields.push(fields);
        Ok(())
    }
}

/// A sequence: elements written one after the other.
struct Seq<'o> {
    out: &'o mut Vec<u8>,
    pool: &'o mut Pool,
    first: bool,
    variant: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        v.serialize(Writer(self.out, false, self.pool))
    }

    fn finish(self) -> Result<(), Error> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

macro_rules! via_json {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            serde_json::to_writer(&mut *self.0, &v)
        }
    )*};
}

impl<'o> ser::Serializer for Writer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'o>;
    type SerializeTuple = Seq<'o>;
    type SerializeTupleStruct = Seq<'o>;
    type SerializeTupleVariant = Seq<'o>;
    type SerializeMap = Nested<'o>;
    type SerializeStruct = Nested<'o>;
    type SerializeStructVariant = Nested<'o>;

    via_json!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8]);

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.0, &serde_json::to_value(v)?)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.0, &serde_json::to_value(v)?)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // As `to_value` does: widened to f64 first.
        serde_json::to_writer(&mut *self.0, &f64::from(v))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        let mut obj = Nested::new(self.0, self.2, false, false);
        obj.field(variant.into(), v)?;
        obj.finish()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'o>, Error> {
        self.0.push(b'[');
        Ok(Seq {
            out: self.0,
            pool: self.2,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, n: usize) -> Result<Seq<'o>, Error> {
        self.serialize_seq(Some(n))
    }
    fn serialize_tuple_struct(self, _: &'static str, n: usize) -> Result<Seq<'o>, Error> {
        self.serialize_seq(Some(n))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'o>, Error> {
        open_variant(self.0, variant)?;
        self.0.push(b'[');
        Ok(Seq {
            out: self.0,
            pool: self.2,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Nested<'o>, Error> {
        Ok(Nested::new(self.0, self.2, false, self.1))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Nested<'o>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Nested<'o>, Error> {
        open_variant(self.0, variant)?;
        Ok(Nested::new(self.0, self.2, true, false))
    }
}

/// `{"variant":` (closed by the variant's sequence or object).
fn open_variant(out: &mut Vec<u8>, variant: &str) -> Result<(), Error> {
    if dotted(variant) {
        return Err(refuse("dotted key"));
    }
    out.push(b'{');
    serde_json::to_writer(&mut *out, variant)?;
    out.push(b':');
    Ok(())
}

macro_rules! seq_impl {
    ($($tr:ident: $f:ident),*) => {$(
        impl ser::$tr for Seq<'_> {
            type Ok = ();
            type Error = Error;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}
seq_impl!(SerializeSeq: serialize_element, SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field, SerializeTupleVariant: serialize_field);

/// A map key as the string `to_value` would use.
fn key_string<T: Serialize + ?Sized>(key: &T) -> Result<String, Error> {
    match serde_json::to_value(key)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(refuse("non-string map key")),
    }
}

/// Struct-like objects, for the two kinds of objects (`field`, `finish`).
macro_rules! struct_impl {
    ($($ty:ident: $tr:ident),*) => {$(
        impl ser::$tr for $ty<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.field(key.into(), v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}
struct_impl!(Nested: SerializeStruct, Nested: SerializeStructVariant, TopLevel: SerializeStruct);

/// Maps, for the two kinds of objects.
macro_rules! map_impl {
    ($($ty:ident),*) => {$(
        impl ser::SerializeMap for $ty<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
                self.key = Some(key_string(key)?);
                Ok(())
            }
            fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                let key = self.key.take().ok_or_else(|| refuse("value without key"))?;
                self.field(key.into(), v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}
map_impl!(Nested, TopLevel);

macro_rules! not_an_object {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, _: $t) -> Result<(), Error> {
            Err(refuse("not an object"))
        }
    )*};
}

/// The top level: a struct or map whose fields are collected, not
/// emitted (anything else is refused).
struct TopLevel<'a> {
    buf: &'a mut Vec<u8>,
    fields: &'a mut Fields,
    key: Option<String>,
    pool: &'a mut Pool,
}

impl ser::Serializer for TopLevel<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }

    not_an_object!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64,
        serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
        serialize_unit_struct: &'static str);
    fn serialize_none(self) -> Result<(), Error> {
        Err(refuse("not an object"))
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(refuse("not an object"))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        Err(refuse("not an object"))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(refuse("not an object"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(refuse("not an object"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(refuse("not an object"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(refuse("not an object"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(refuse("not an object"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(refuse("not an object"))
    }
}

impl TopLevel<'_> {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        push_field(self.buf, self.fields, key, value, true, self.pool)
    }

    fn finish(self) -> Result<(), Error> {
        Ok(())
    }
}
