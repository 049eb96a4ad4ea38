//! The transport's errors: [`TransportError`] for everything a caller of
//! [`Transport`](crate::Transport) can see, and [`CertError`] (wrapped by it)
//! for certificate files.
//!
//! Owns: the variants, their messages, and the two questions a caller asks of
//! a failure: may I retry it ([`TransportError::is_retryable`]) and may the
//! request have run anyway ([`TransportError::may_have_executed`]).
//! Does not own: errors that cross the wire (those are
//! [`WireError`](crate::frame::WireError), mapped into this enum by the
//! caller) nor application errors, which travel inside an RPC's response type.

use std::path::PathBuf;
use std::time::Duration;

use meridian_hlc::Timestamp;

use meridian_topology::NodeId;

/// Everything that can go wrong sending a message to another node.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No response within the caller's timeout. The request may have run.
    #[error("call {rpc} to node {to} timed out after {timeout:?}")]
    Timeout {
        to: NodeId,
        rpc: &'static str,
        timeout: Duration,
    },
    /// The node is not in the address book ([`Transport::set_peer`](crate::Transport::set_peer)).
    #[error("node {0} is not in the address book")]
    UnknownNode(NodeId),
    /// Dialing the node failed before any request was written.
    #[error("cannot connect to node {to}: {reason}")]
    Connect { to: NodeId, reason: String },
    /// The TLS handshake failed: one side's certificate is not signed by the
    /// other's cluster CA (or has expired, or lacks the `node` name).
    #[error("TLS handshake with node {to} failed: {reason}")]
    Tls { to: NodeId, reason: String },
    /// The connection broke after the request was written and before the
    /// response arrived. The request may have run.
    #[error("connection to node {to} lost during {rpc}: {reason}")]
    ConnectionLost {
        to: NodeId,
        rpc: &'static str,
        reason: String,
    },
    /// The receiving node has no handler for this message kind.
    #[error("node {to} has no handler for message kind {kind}")]
    UnknownKind { to: NodeId, kind: u16 },
    /// A timestamp was more than `max_offset` ahead of the receiver's physical
    /// clock. `refused_by` is the node whose clock check failed: the callee
    /// (for a request) or this node (for a response).
    #[error(
        "node {refused_by} refused a message from node {from}: timestamp {remote} is {ahead:?} ahead of its clock ({local}), beyond max offset {max_offset:?}"
    )]
    ClockOffset {
        refused_by: NodeId,
        from: NodeId,
        remote: Timestamp,
        local: Timestamp,
        ahead: Duration,
        max_offset: Duration,
    },
    /// A frame was larger than the configured maximum, here or at the peer.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u32 },
    /// A frame, envelope or body did not decode (here or at the peer).
    #[error("malformed message: {0}")]
    Decode(String),
    /// A request or response did not serialize.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The handler at the peer panicked; the peer is still up.
    #[error("handler for {rpc} panicked at node {to}")]
    HandlerPanicked { to: NodeId, rpc: String },
    /// A handler registration was refused (duplicate or reserved kind).
    #[error("cannot register message kind {kind}: {reason}")]
    InvalidKind { kind: u16, reason: &'static str },
    /// Certificates could not be created or loaded.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// A configuration value (or network profile) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// This transport has been shut down.
    #[error("transport is shut down")]
    Closed,
}

impl TransportError {
    /// Whether trying again (later, or at another replica) can succeed.
    /// Timeouts and connection failures can; refusals (unknown kind, clock
    /// offset, malformed or oversized frames, bad certificates) cannot.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::Connect { .. }
                | TransportError::ConnectionLost { .. }
        )
    }

    /// Whether the request may have been executed by the peer although no
    /// response came back (an "ambiguous result"). A caller that retries a
    /// non-idempotent request after such an error must be prepared for it
    /// to run twice.
    pub fn may_have_executed(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. } | TransportError::ConnectionLost { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TransportError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Errors creating or loading the certificates of a certs directory.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: file not found")]
    Missing { path: PathBuf },
    #[error("{path}: already exists; refusing to overwrite it")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("invalid host {host:?} for a node certificate: {reason}")]
    InvalidHost { host: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_ambiguity_classification() {
        let timeout = TransportError::Timeout {
            to: 1,
            rpc: "x",
            timeout: Duration::from_secs(1),
        };
        assert!(timeout.is_retryable() && timeout.may_have_executed());
        let connect = TransportError::Connect {
            to: 1,
            reason: "refused".into(),
        };
        assert!(connect.is_retryable() && !connect.may_have_executed());
        let unknown = TransportError::UnknownKind { to: 1, kind: 7 };
        assert!(!unknown.is_retryable() && !unknown.may_have_executed());
        assert!(!TransportError::Closed.is_retryable());
    }
}
