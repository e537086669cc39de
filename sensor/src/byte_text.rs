//! Kernel strings (argv, paths, comm) are bytes, not UTF-8. ECS documents are
//! JSON, which needs text. This module turns bytes into text without losing
//! anything and without panicking:
//!
//! - valid UTF-8 is kept exactly as it is, so rules see the real value;
//! - a value containing invalid UTF-8 is escaped: each byte of an invalid
//!   sequence becomes `\xNN` (two lowercase hex digits) and, in that value
//!   only, every literal backslash becomes `\\`, so the escaped form decodes
//!   back to the original bytes unambiguously ([`from_escaped`]).
//!
//! Escaping only the values that need it keeps the common case (all UTF-8)
//! byte-identical to what the process passed, which is what the detection
//! rules were written against.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Text for `bytes`: borrowed when it is valid UTF-8, escaped otherwise.
pub fn to_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(escape(bytes)),
    }
}

/// Which text fields of a process were escaped by [`to_text`] (their bytes
/// were not UTF-8). A reader needs to know: in an escaped value `\\` is one
/// backslash and `\xNN` one byte, in any other value both are literal text.
/// The sensor lists the escaped fields of each event in
/// `sensor.escaped_fields` (docs/ecs.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscapedFields(u8);

impl EscapedFields {
    pub const NAME: EscapedFields = EscapedFields(1);
    pub const EXECUTABLE: EscapedFields = EscapedFields(2);
    /// `args` and so `command_line`.
    pub const ARGS: EscapedFields = EscapedFields(4);
    pub const WORKING_DIRECTORY: EscapedFields = EscapedFields(8);

    /// [`to_text`] of `bytes`, marking `field` when it had to escape.
    pub fn text<'a>(&mut self, field: EscapedFields, bytes: &'a [u8]) -> Cow<'a, str> {
        let text = to_text(bytes);
        if matches!(text, Cow::Owned(_)) {
            self.0 |= field.0;
        }
        text
    }

    /// Marks `field` as escaped when `escaped` is true.
    pub fn mark(&mut self, field: EscapedFields, escaped: bool) {
        if escaped {
            self.0 |= field.0;
        }
    }

    pub fn contains(self, field: EscapedFields) -> bool {
        self.0 & field.0 == field.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ECS names of the escaped fields under `prefix` (`process`,
    /// `process.parent`).
    pub fn names(self, prefix: &str, out: &mut Vec<String>) {
        for (field, names) in [
            (Self::NAME, &["name"][..]),
            (Self::EXECUTABLE, &["executable"][..]),
            (Self::ARGS, &["args", "command_line"][..]),
            (Self::WORKING_DIRECTORY, &["working_directory"][..]),
        ] {
            if self.contains(field) {
                out.extend(names.iter().map(|n| format!("{prefix}.{n}")));
            }
        }
    }
}

/// Whether [`to_text`] escaped this value (the bytes were not UTF-8).
pub fn needs_escape(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_err()
}

fn escape(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                push_valid(&mut out, valid);
                return out;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                // `valid_up_to` guarantees this prefix is UTF-8.
                push_valid(&mut out, std::str::from_utf8(valid).unwrap_or_default());
                let bad = err.error_len().unwrap_or(rest.len());
                for b in &rest[..bad] {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\x{b:02x}");
                }
                bytes = &rest[bad..];
            }
        }
    }
}

fn push_valid(out: &mut String, valid: &str) {
    for c in valid.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
}

/// Decodes the escaped form produced for a non-UTF-8 value back to bytes.
/// Returns `None` if `text` is not a well-formed escaped value.
pub fn from_escaped(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1)? {
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => {
                let hex = text.get(i + 2..i + 4)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_is_kept_verbatim_even_with_backslashes() {
        assert_eq!(to_text(b"printf 'a\\nb' \xc3\xa9"), "printf 'a\\nb' é");
        assert!(matches!(to_text(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_bytes_are_escaped_and_backslashes_doubled() {
        assert_eq!(to_text(b"a\xffb\\c\xc3"), "a\\xffb\\\\c\\xc3");
        assert_eq!(to_text(b"\x80"), "\\x80");
    }

    proptest! {
        #[test]
        fn escaping_is_lossless(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = to_text(&bytes);
            if needs_escape(&bytes) {
                prop_assert_eq!(from_escaped(&text), Some(bytes.clone()));
            } else {
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
        }
    }
}
