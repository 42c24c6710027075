//! Encoding: the inverse of the `Arbitrary` decoding, for writing seeds. The [`Encode`] trait,
//! the `desc!` macro that declares a description type with both, and the helper types [`Text`],
//! [`Bytes`] and [`List`] the description types of every target are built from.

use arbitrary::{Arbitrary, Unstructured};

/// Writes a value as the bytes that `Arbitrary` decodes back into it (arbitrary 1.x: integers
/// little-endian, `bool` one byte, `Option` a `bool` then the value, a derived enum's variant a
/// `u32` scaled by the variant count, a derived struct its fields in order).
pub trait Encode {
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// The bytes that decode into `value`.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

macro_rules! encode_int {
    ($($t:ty)*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
encode_int!(u8 u16 u32 u64 u128 i8 i16 i32 i64);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
}

impl<T: Encode> Encode for Box<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
}

/// The `u32` that derive(Arbitrary) maps to variant `index` of `count`: it computes
/// `(u64::from(x) * count) >> 32`.
pub(super) fn encode_variant(index: u64, count: u64, out: &mut Vec<u8>) {
    let x = (index << 32).div_ceil(count);
    u32::try_from(x).unwrap_or(u32::MAX).encode(out);
}

/// Declares a description type: derives `Arbitrary` (and `Clone`, `Debug`, `PartialEq`) and
/// writes its [`Encode`]. Enums use tuple variants whose fields are named for the encoder.
macro_rules! desc {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Arbitrary, Clone, Debug, PartialEq)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                $( self.$f.encode(out); )*
            }
        }
    };
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident ( $($f:ident : $t:ty),* )),* $(,)? }) => {
        $(#[$m])*
        #[derive(Arbitrary, Clone, Debug, PartialEq)]
        pub enum $name { $($(#[$vm])* $v($($t),*)),* }
        impl Encode for $name {
            #[allow(unused_assignments, unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                let count = [$(stringify!($v)),*].len() as u64;
                let mut index = 0u64;
                $(
                    if let $name::$v($($f),*) = self {
                        encode_variant(index, count, out);
                        $( $f.encode(out); )*
                        return;
                    }
                    index += 1;
                )*
            }
        }
    };
}

/// A string of at most 255 bytes: a length byte, then that many bytes (lossy UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u8::arbitrary(u)?);
        let bytes = u.bytes(len.min(u.len()))?;
        Ok(Text(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl Encode for Text {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut end = self.0.len().min(255);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        out.push(u8::try_from(end).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.0.as_bytes()[..end]);
    }
}

impl Text {
    /// A text from a literal.
    pub fn of(s: &str) -> Self {
        Text(s.to_string())
    }
}

/// Up to 255 raw bytes: a length byte, then the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u8::arbitrary(u)?);
        Ok(Bytes(u.bytes(len.min(u.len()))?.to_vec()))
    }
}

impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.0.len().min(255);
        out.push(u8::try_from(n).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.0[..n]);
    }
}

/// Up to `N` items: a count byte (modulo `N + 1`), then the items.
#[derive(Clone, Debug, PartialEq)]
pub struct List<T, const N: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const N: usize> Arbitrary<'a> for List<T, N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = usize::from(u8::arbitrary(u)?) % (N + 1);
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(T::arbitrary(u)?);
        }
        Ok(List(items))
    }
}

impl<T: Encode, const N: usize> Encode for List<T, N> {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.0.len().min(N);
        out.push(u8::try_from(n).unwrap_or(u8::MAX));
        self.0.iter().take(n).for_each(|item| item.encode(out));
    }
}

impl<T, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List(Vec::new())
    }
}

/// Decodes a description; `None` when the bytes cannot make one.
pub(super) fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(data)).ok()
}
