//! The layout fingerprint of the shared records, generated from their
//! declarations: every record is declared through [`record!`], which
//! implements [`Layout`] from the struct's own field list (each field's
//! name, offset and its type's own fingerprint, nested records included), so no
//! field can be left out of [`crate::LAYOUT_HASH`] by a hand-written list.

/// A type's layout as one number: its size, and for a record each field's
/// offset and type, in declaration order.
pub trait Layout {
    const HASH: u64;
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over the little-endian bytes of `parts`, from `hash`.
pub const fn fnv1a(mut hash: u64, parts: &[u64]) -> u64 {
    let mut i = 0;
    while i < parts.len() {
        let mut b = 0;
        while b < 8 {
            hash ^= (parts[i] >> (b * 8)) & 0xff;
            hash = hash.wrapping_mul(FNV_PRIME);
            b += 1;
        }
        i += 1;
    }
    hash
}

/// FNV-1a over a field's name: a swap of two fields of one type changes
/// what each offset means, so the names are part of the fingerprint.
pub const fn of_name(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// The fingerprint of a field list: `[size, name, offset, type, ...]`.
pub const fn of_fields(parts: &[u64]) -> u64 {
    fnv1a(FNV_OFFSET, parts)
}

macro_rules! scalar_layout {
    ($($t:ty = $tag:literal),+) => {
        $(impl Layout for $t {
            const HASH: u64 = fnv1a(FNV_OFFSET, &[$tag, core::mem::size_of::<$t>() as u64]);
        })+
    };
}

scalar_layout!(u8 = 1, u16 = 2, u32 = 3, u64 = 4, i32 = 5, i64 = 6);

impl<T: Layout, const N: usize> Layout for [T; N] {
    const HASH: u64 = fnv1a(FNV_OFFSET, &[7, T::HASH, N as u64]);
}

/// Declares a shared record (a `#[repr(C)]` struct with `pub` fields) and
/// its [`Layout`]: size, then each field's name, offset and type
/// fingerprint.
macro_rules! record {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $(#[$fattr:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        pub struct $name {
            $(
                $(#[$fattr])*
                pub $field: $ty,
            )*
        }

        impl $crate::layout::Layout for $name {
            const HASH: u64 = $crate::layout::of_fields(&[
                core::mem::size_of::<$name>() as u64,
                $(
                    $crate::layout::of_name(stringify!($field)),
                    core::mem::offset_of!($name, $field) as u64,
                    <$ty as $crate::layout::Layout>::HASH,
                )*
            ]);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Layout;

    record! {
        #[repr(C)]
        pub struct Inner {
            pub a: u32,
            pub b: u32,
        }
    }

    record! {
        #[repr(C)]
        pub struct Outer {
            pub inner: Inner,
            pub c: u64,
        }
    }

    // The same shape with one inner field's type changed: the outer
    // fingerprint must change although Outer's own offsets do not.
    mod changed {
        use super::super::Layout;
        record! {
            #[repr(C)]
            pub struct Inner {
                pub a: u32,
                pub b: i32,
            }
        }
        record! {
            #[repr(C)]
            pub struct Outer {
                pub inner: Inner,
                pub c: u64,
            }
        }
        pub const HASH: u64 = <Outer as Layout>::HASH;
    }

    // The same fields in another order.
    mod swapped {
        record! {
            #[repr(C)]
            pub struct Inner {
                pub b: u32,
                pub a: u32,
            }
        }
        pub const HASH: u64 = <Inner as super::super::Layout>::HASH;
    }

    #[test]
    fn every_nested_field_is_in_the_fingerprint() {
        assert_ne!(Outer::HASH, changed::HASH);
        assert_ne!(Inner::HASH, swapped::HASH);
    }
}
