//! The wire format: one frame per QUIC stream direction.
//!
//! ```text
//! +----------------+-----------+----------------------+-------------------+
//! | length: u32 BE | version:u8| envelope (postcard)  | body (postcard)   |
//! +----------------+-----------+----------------------+-------------------+
//!                  <------------------- length bytes ------------------->
//! ```
//!
//! - `length` counts everything after itself. A receiver checks it against
//!   its maximum frame size *before* allocating anything for the frame.
//! - `version` is [`FRAME_VERSION`]; any other value is refused.
//! - the [`Envelope`] says what the body is (`kind`), who sent it (`from`)
//!   and the sender's HLC `timestamp`; on a response it may carry a
//!   [`WireError`] instead of a body.
//! - the body is the postcard encoding of the RPC's request or response type.
//!   It is decoded only by the handler that knows its type, so the transport
//!   itself never deserializes application data.
//!
//! postcard is self-delimiting, so the envelope needs no length of its own:
//! [`decode_frame`] takes the envelope off the front and leaves the body as
//! a zero-copy slice.
//!
//! Owns: encoding and decoding frames, reading one from a stream. Does not
//! own: what to do with a bad frame (the receive path in
//! `transport` module answers with a [`WireError`] and keeps the
//! connection).

use bytes::Bytes;
use meridian_hlc::Timestamp;
use serde::{Deserialize, Serialize};

use meridian_topology::NodeId;

/// The only frame version this build reads and writes.
pub const FRAME_VERSION: u8 = 1;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Default cap on a frame's `length`: 64 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 64 << 20;

/// What every frame says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The message kind ([`Rpc::KIND`](crate::Rpc::KIND)); a response echoes
    /// its request's kind.
    pub kind: u16,
    /// The sending node.
    pub from: NodeId,
    /// The sender's HLC reading when it sent the frame.
    pub timestamp: Timestamp,
    /// Set on a response when the request was refused; the body is empty.
    pub error: Option<WireError>,
}

/// Why a node refused a request, sent back in the response envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    #[error("no handler for message kind {kind}")]
    UnknownKind { kind: u16 },
    #[error("timestamp {remote} is {ahead_nanos} ns ahead of local time {local}, beyond max offset {max_offset_nanos} ns")]
    ClockOffset {
        remote: Timestamp,
        local: Timestamp,
        ahead_nanos: u64,
        max_offset_nanos: u64,
    },
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u32 },
    #[error("malformed message: {0}")]
    Decode(String),
    #[error("cannot encode response: {0}")]
    Encode(String),
    #[error("handler for {rpc} panicked")]
    HandlerPanicked { rpc: String },
}

/// A frame that could not be read or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: u32 },
    #[error("unsupported frame version {0} (this node speaks {FRAME_VERSION})")]
    Version(u8),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl From<FrameError> for WireError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge { len, max } => WireError::FrameTooLarge { len, max },
            other => WireError::Decode(other.to_string()),
        }
    }
}

/// Encodes the length prefix, version and envelope of a frame whose body of
/// `body_len` bytes is written right after it (as its own chunk, so a large
/// body is never copied). Fails if the whole frame would exceed `max`.
pub fn encode_header(env: &Envelope, body_len: usize, max: u32) -> Result<Bytes, FrameError> {
    let mut buf = Vec::with_capacity(LENGTH_PREFIX_LEN + 1 + 32);
    buf.extend_from_slice(&[0; LENGTH_PREFIX_LEN]); // patched below
    buf.push(FRAME_VERSION);
    let mut buf =
        postcard::to_extend(env, buf).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = (buf.len() - LENGTH_PREFIX_LEN) as u64 + body_len as u64;
    if len > u64::from(max) {
        return Err(FrameError::TooLarge { len, max });
    }
    // len <= max <= u32::MAX, checked just above.
    buf[..LENGTH_PREFIX_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(Bytes::from(buf))
}

/// Encodes a whole frame into one buffer (tests and tools; the transport
/// writes header and body as two chunks).
pub fn encode_frame(env: &Envelope, body: &[u8], max: u32) -> Result<Vec<u8>, FrameError> {
    let header = encode_header(env, body.len(), max)?;
    let mut out = Vec::with_capacity(header.len() + body.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits a frame (everything after the length prefix) into its envelope and
/// body. The body shares `frame`'s buffer.
pub fn decode_frame(frame: Bytes) -> Result<(Envelope, Bytes), FrameError> {
    let Some(&version) = frame.first() else {
        return Err(FrameError::Malformed("empty frame".into()));
    };
    if version != FRAME_VERSION {
        return Err(FrameError::Version(version));
    }
    let (env, rest) = postcard::take_from_bytes::<Envelope>(&frame[1..])
        .map_err(|e| FrameError::Malformed(format!("envelope: {e}")))?;
    let body_start = frame.len() - rest.len();
    Ok((env, frame.slice(body_start..)))
}

/// Decodes a whole frame including its length prefix (tests and tools).
pub fn decode_full_frame(bytes: &[u8]) -> Result<(Envelope, Bytes), FrameError> {
    if bytes.len() < LENGTH_PREFIX_LEN {
        return Err(FrameError::Malformed(
            "shorter than its length prefix".into(),
        ));
    }
    let (prefix, rest) = bytes.split_at(LENGTH_PREFIX_LEN);
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len != rest.len() {
        return Err(FrameError::Malformed(format!(
            "length prefix says {len} bytes, frame has {}",
            rest.len()
        )));
    }
    decode_frame(Bytes::copy_from_slice(rest))
}

/// Why reading a frame from a stream failed.
#[derive(Debug)]
pub(crate) enum ReadFrameError {
    /// The bytes are not a valid frame; the stream is usable for a reply.
    Frame(FrameError),
    /// The stream or the connection failed.
    Stream(quinn::ReadError),
}

/// Reads the one frame a stream carries, through to the end of the stream,
/// and returns it without its length prefix. The length is checked against
/// `max` as soon as the prefix has arrived, before the rest is buffered. A
/// frame that arrived in one piece (the usual case for small messages) is
/// returned without a copy.
pub(crate) async fn read_frame(
    recv: &mut quinn::RecvStream,
    max: u32,
) -> Result<Bytes, ReadFrameError> {
    let malformed = |m: String| ReadFrameError::Frame(FrameError::Malformed(m));
    let mut pieces: Vec<Bytes> = Vec::with_capacity(1);
    let mut have = 0usize;
    let mut need: Option<usize> = None; // prefix + length, once known
    loop {
        // Never ask for more than the frame still lacks (plus one byte, to
        // notice a sender that writes past its length).
        let want = need.map_or(usize::MAX, |n| n.saturating_sub(have) + 1);
        let chunk = match recv.read_chunk(want, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => break,
            Err(e) => return Err(ReadFrameError::Stream(e)),
        };
        have += chunk.len();
        pieces.push(chunk);
        if need.is_none() && have >= LENGTH_PREFIX_LEN {
            let len = u32::from_be_bytes(prefix(&pieces));
            if len > max {
                return Err(ReadFrameError::Frame(FrameError::TooLarge {
                    len: u64::from(len),
                    max,
                }));
            }
            need = Some(LENGTH_PREFIX_LEN + len as usize);
        }
        if let Some(n) = need {
            if have > n {
                return Err(malformed(format!(
                    "more bytes than the length prefix's {}",
                    n - LENGTH_PREFIX_LEN
                )));
            }
        }
    }
    let Some(n) = need else {
        return Err(malformed(format!(
            "stream ended after {have} bytes of the length prefix"
        )));
    };
    if have < n {
        return Err(malformed(format!(
            "stream ended after {} of {} bytes",
            have - LENGTH_PREFIX_LEN,
            n - LENGTH_PREFIX_LEN
        )));
    }
    let whole = if pieces.len() == 1 {
        pieces.swap_remove(0)
    } else {
        let mut buf = bytes::BytesMut::with_capacity(n);
        for piece in &pieces {
            buf.extend_from_slice(piece);
        }
        buf.freeze()
    };
    Ok(whole.slice(LENGTH_PREFIX_LEN..))
}

/// The first four bytes of a sequence of chunks holding at least four.
fn prefix(pieces: &[Bytes]) -> [u8; LENGTH_PREFIX_LEN] {
    let mut out = [0u8; LENGTH_PREFIX_LEN];
    for (slot, byte) in out
        .iter_mut()
        .zip(pieces.iter().flat_map(|p| p.iter().copied()))
    {
        *slot = byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(error: Option<WireError>) -> Envelope {
        Envelope {
            kind: 42,
            from: 7,
            timestamp: Timestamp::new(1_700_000_000_000_000_000, 3),
            error,
        }
    }

    #[test]
    fn round_trip_keeps_body_separate() {
        let body = postcard::to_allocvec(&("hello", 5u32)).unwrap();
        let frame = encode_frame(&env(None), &body, DEFAULT_MAX_FRAME_SIZE).unwrap();
        let (e, b) = decode_full_frame(&frame).unwrap();
        assert_eq!(e, env(None));
        assert_eq!(&b[..], &body[..]);
        let decoded: (String, u32) = postcard::from_bytes(&b).unwrap();
        assert_eq!(decoded, ("hello".to_string(), 5));
    }

    #[test]
    fn error_envelope_round_trips() {
        let e = env(Some(WireError::UnknownKind { kind: 9 }));
        let frame = encode_frame(&e, &[], DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(decode_full_frame(&frame).unwrap().0, e);
    }

    #[test]
    fn oversized_frames_are_refused_when_encoding() {
        let err = encode_header(&env(None), 100, 50).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 50, .. }));
    }

    #[test]
    fn bad_versions_and_garbage_are_refused() {
        let mut frame = encode_frame(&env(None), b"", DEFAULT_MAX_FRAME_SIZE).unwrap();
        frame[LENGTH_PREFIX_LEN] = 9;
        assert_eq!(
            decode_full_frame(&frame).unwrap_err(),
            FrameError::Version(9)
        );
        assert!(decode_frame(Bytes::new()).is_err());
        assert!(decode_frame(Bytes::from_static(&[FRAME_VERSION, 0xff, 0xff])).is_err());
        assert!(decode_full_frame(&[0, 0, 0, 9, 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_frame(Bytes::from(bytes.clone()));
            let _ = decode_full_frame(&bytes);
        }

        #[test]
        fn round_trips(kind: u16, from: u64, wall: u64, logical: u32,
                       body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let e = Envelope { kind, from, timestamp: Timestamp::new(wall, logical), error: None };
            let frame = encode_frame(&e, &body, DEFAULT_MAX_FRAME_SIZE).unwrap();
            let (e2, b2) = decode_full_frame(&frame).unwrap();
            prop_assert_eq!(e2, e);
            prop_assert_eq!(&b2[..], &body[..]);
        }
    }
}
