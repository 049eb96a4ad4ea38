//! Order-preserving encoding of typed values.
//!
//! `encode(a) < encode(b)` (bytewise) exactly when `a < b`, for two values
//! of the same type and direction; a composite key is the concatenation of its
//! encoded values, and compares column by column because every encoding is
//! prefix-free (no encoding is a prefix of another).
//!
//! Every encoded value starts with a tag byte. Ascending tags are all below
//! `0x80`; a descending value is the bitwise NOT of its ascending encoding, so
//! its tag is above `0x80` and a decoder knows the direction from the tag.
//!
//! | type | tag (ascending) | payload |
//! |---|---|---|
//! | NULL | `0x01` | none |
//! | `false` / `true` | `0x10` / `0x11` | none |
//! | integer, negative | `0x28 - 1 - n` (`0x1f..=0x27`) | the low `n` bytes of the value, big-endian, where `n` is the byte length of `!v` |
//! | integer, non-negative | `0x28 + n` (`0x28..=0x30`) | the low `n` bytes, big-endian, `n` = significant bytes of `v` |
//! | float | `0x40` | 8 bytes: IEEE bits, sign bit flipped when positive, all bits flipped when negative; `-0` is stored as `+0`, every NaN as one NaN that sorts above `+inf` (PostgreSQL's order) |
//! | string | `0x50` | UTF-8 bytes, `0x00` escaped as `0x00 0xff`, terminated by `0x00 0x01` |
//! | bytes | `0x60` | as string |
//!
//! NULL sorts first in ascending order and last in descending order, as in
//! CockroachDB. Small integers are short: 0 is one byte, 1..=255 two bytes;
//! table and index ids in keys use this form.

use crate::KeyError;

/// Direction of a key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ascending,
    Descending,
}

/// A typed value that can be part of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
}

const TAG_NULL: u8 = 0x01;
const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_INT_ZERO: u8 = 0x28;
const TAG_INT_MIN: u8 = TAG_INT_ZERO - 9;
const TAG_INT_MAX: u8 = TAG_INT_ZERO + 8;
const TAG_FLOAT: u8 = 0x40;
const TAG_STRING: u8 = 0x50;
const TAG_BYTES: u8 = 0x60;

/// Escape byte and the two bytes that may follow it.
pub(crate) const ESCAPE: u8 = 0x00;
pub(crate) const ESCAPED_ZERO: u8 = 0xff;
pub(crate) const TERMINATOR: u8 = 0x01;

/// Appends the encoding of `value` in direction `dir` to `buf`.
pub fn encode_value(buf: &mut Vec<u8>, value: &Value, dir: Direction) {
    let start = buf.len();
    match value {
        Value::Null => buf.push(TAG_NULL),
        Value::Bool(false) => buf.push(TAG_FALSE),
        Value::Bool(true) => buf.push(TAG_TRUE),
        Value::Int(v) => encode_int_asc(buf, *v),
        Value::Float(f) => {
            buf.push(TAG_FLOAT);
            buf.extend_from_slice(&float_sort_bits(*f).to_be_bytes());
        }
        Value::String(s) => {
            buf.push(TAG_STRING);
            escape_into(buf, s.as_bytes());
        }
        Value::Bytes(b) => {
            buf.push(TAG_BYTES);
            escape_into(buf, b);
        }
    }
    if dir == Direction::Descending {
        for byte in &mut buf[start..] {
            *byte = !*byte;
        }
    }
}

/// Encodes several values, each with its own direction, as one key.
pub fn encode_values<'a>(
    buf: &mut Vec<u8>,
    values: impl IntoIterator<Item = (&'a Value, Direction)>,
) {
    for (value, dir) in values {
        encode_value(buf, value, dir);
    }
}

/// Appends an ascending integer (tag and payload). Public because key spaces
/// use it for table, index and range ids.
pub fn encode_int_asc(buf: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        let n = significant_bytes(v as u64);
        buf.push(TAG_INT_ZERO + n as u8);
        buf.extend_from_slice(&(v as u64).to_be_bytes()[8 - n..]);
    } else {
        let n = significant_bytes(!(v as u64));
        buf.push(TAG_INT_ZERO - 1 - n as u8);
        buf.extend_from_slice(&(v as u64).to_be_bytes()[8 - n..]);
    }
}

fn significant_bytes(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).div_ceil(8)
}

/// Maps a float to a u64 whose unsigned order is the SQL order of floats.
fn float_sort_bits(f: f64) -> u64 {
    let f = if f == 0.0 {
        0.0 // folds -0 into +0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn float_from_sort_bits(bits: u64) -> f64 {
    if bits >> 63 == 1 {
        f64::from_bits(bits & !(1 << 63))
    } else {
        f64::from_bits(!bits)
    }
}

/// Appends `bytes` with `0x00` escaped, then the terminator.
pub(crate) fn escape_into(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len() + 2);
    for &b in bytes {
        buf.push(b);
        if b == ESCAPE {
            buf.push(ESCAPED_ZERO);
        }
    }
    buf.push(ESCAPE);
    buf.push(TERMINATOR);
}

/// Reads an escaped byte string from the start of `input` (bytes already
/// un-inverted by `map`). Returns the bytes and how many input bytes it used.
pub(crate) fn unescape(input: &[u8], map: impl Fn(u8) -> u8) -> Result<(Vec<u8>, usize), KeyError> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = map(*input.get(i).ok_or(KeyError::Truncated)?);
        if b != ESCAPE {
            out.push(b);
            i += 1;
            continue;
        }
        let next = map(*input.get(i + 1).ok_or(KeyError::Truncated)?);
        match next {
            ESCAPED_ZERO => out.push(ESCAPE),
            TERMINATOR => return Ok((out, i + 2)),
            other => return Err(KeyError::BadEscape(other)),
        }
        i += 2;
    }
}

/// Decodes one value from the start of `input`. Returns the value, its
/// direction, and the number of bytes it occupied.
pub fn decode_value(input: &[u8]) -> Result<(Value, Direction, usize), KeyError> {
    let first = *input.first().ok_or(KeyError::Truncated)?;
    let (dir, map): (Direction, fn(u8) -> u8) = if first >= 0x80 {
        (Direction::Descending, |b| !b)
    } else {
        (Direction::Ascending, |b| b)
    };
    let tag = map(first);
    let rest = &input[1..];
    let (value, used) = match tag {
        TAG_NULL => (Value::Null, 0),
        TAG_FALSE => (Value::Bool(false), 0),
        TAG_TRUE => (Value::Bool(true), 0),
        TAG_INT_MIN..=TAG_INT_MAX => {
            let (v, used) = decode_int_payload(tag, rest, map)?;
            (Value::Int(v), used)
        }
        TAG_FLOAT => {
            let bytes = rest.get(..8).ok_or(KeyError::Truncated)?;
            let mut raw = [0u8; 8];
            for (dst, src) in raw.iter_mut().zip(bytes) {
                *dst = map(*src);
            }
            (
                Value::Float(float_from_sort_bits(u64::from_be_bytes(raw))),
                8,
            )
        }
        TAG_STRING => {
            let (bytes, used) = unescape(rest, map)?;
            let s = String::from_utf8(bytes).map_err(|_| KeyError::InvalidUtf8)?;
            (Value::String(s), used)
        }
        TAG_BYTES => {
            let (bytes, used) = unescape(rest, map)?;
            (Value::Bytes(bytes), used)
        }
        other => return Err(KeyError::UnknownTag(other)),
    };
    Ok((value, dir, used + 1))
}

fn decode_int_payload(tag: u8, rest: &[u8], map: fn(u8) -> u8) -> Result<(i64, usize), KeyError> {
    let (negative, n) = if tag >= TAG_INT_ZERO {
        (false, (tag - TAG_INT_ZERO) as usize)
    } else {
        (true, (TAG_INT_ZERO - 1 - tag) as usize)
    };
    let bytes = rest.get(..n).ok_or(KeyError::Truncated)?;
    let mut raw = if negative { [0xffu8; 8] } else { [0u8; 8] };
    for (dst, src) in raw[8 - n..].iter_mut().zip(bytes) {
        *dst = map(*src);
    }
    let v = u64::from_be_bytes(raw) as i64;
    // Reject non-canonical encodings: they would break the order guarantee.
    let canonical = if negative {
        v < 0 && significant_bytes(!(v as u64)) == n
    } else {
        v >= 0 && significant_bytes(v as u64) == n
    };
    if !canonical {
        return Err(KeyError::NonCanonicalInt);
    }
    Ok((v, n))
}

/// Decodes an ascending integer from the start of `input` (as written by
/// [`encode_int_asc`]). Returns the value and the bytes used.
pub fn decode_int_asc(input: &[u8]) -> Result<(i64, usize), KeyError> {
    match decode_value(input)? {
        (Value::Int(v), Direction::Ascending, used) => Ok((v, used)),
        _ => Err(KeyError::Expected("ascending integer")),
    }
}

/// Decodes a whole composite key into its values and directions.
pub fn decode_values(mut input: &[u8]) -> Result<Vec<(Value, Direction)>, KeyError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (value, dir, used) = decode_value(input)?;
        out.push((value, dir));
        input = &input[used..];
    }
    Ok(out)
}
