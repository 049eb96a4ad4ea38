//! Meridian's node-to-node transport: QUIC (quinn) with mutual TLS, typed
//! request/response RPCs and one-way messages, hybrid-logical-clock
//! propagation, and an injected network model that stands in for netem.
//!
//! Every byte between two Meridian nodes goes through a [`Transport`]. A
//! node runs one quinn endpoint that both listens and dials. Nodes prove
//! membership with certificates signed by the cluster CA ([`certs`]):
//! each side of every handshake checks the other's chain ([`tls`]), so a
//! process holding a certificate from any other CA is refused before a
//! single frame of it is read. Node ids are not in certificates; a node
//! names itself in the envelope of each frame.
//!
//! # Frames
//!
//! Every stream carries exactly one frame in each direction ([`frame`]):
//!
//! | bytes        | field    | meaning |
//! |--------------|----------|---------|
//! | 4 (u32 BE)   | length   | bytes after this field; checked against the max frame size (default 64 MiB) before anything is allocated |
//! | 1            | version  | [`frame::FRAME_VERSION`]; anything else is refused |
//! | variable     | envelope | postcard [`frame::Envelope`]: `kind` (u16), `from` (node id), `timestamp` (sender's HLC), `error` (set only on a refused request's response) |
//! | rest         | body     | postcard encoding of the RPC's request or response type |
//!
//! A frame that is too large or does not decode is answered with a
//! [`frame::WireError`] on that stream; the node and the connection carry on.
//!
//! # One call, step by step
//!
//! `transport.call::<Heartbeat>(2, &req, timeout)` on node 1:
//!
//! 1. The request is encoded with postcard; node 2's entry is taken from the
//!    address book ([`Transport::set_peer`]), or the call fails with
//!    [`TransportError::UnknownNode`].
//! 2. The envelope gets `Heartbeat::KIND`, `from = 1` and `clock.now()`.
//! 3. If a [`NetworkModel`] is active, it decides: drop (the call then waits
//!    out its timeout, like a partition would make it) or deliver after the
//!    one-way delay between the two regions, which the caller sleeps.
//! 4. The cached connection to node 2 is used, or dialed (concurrent callers
//!    share one dial). A new bidirectional stream is opened (no round trip);
//!    the frame is written (a small body is copied behind its header, a large
//!    one goes as a chunk of its own, never copied) and the stream finished.
//! 5. Node 2's connection task accepts the stream and serves it: inline if
//!    that completes without waiting (a small request that arrived whole and
//!    a handler that answers at once), else on a task of its own, so a slow
//!    handler never holds up the next stream. Serving reads the frame,
//!    checks the model's partitions from its own side, updates its clock
//!    with the sender's timestamp (refusing the message with
//!    [`TransportError::ClockOffset`] if it is beyond `max_offset`), finds
//!    the handler by kind ([`TransportError::UnknownKind`] if none), runs it
//!    (panics are caught), and writes back a response frame stamped with its
//!    own clock.
//! 6. Node 1 reads the response, applies the model for the way back (delay
//!    or drop), updates its own clock with the responder's timestamp, and
//!    decodes the body. Counters of both nodes are bumped ([`metrics`]).
//!
//! If the connection was already dead (the peer restarted), the call dials
//! again once within its timeout: always if the request was certainly not
//! delivered, and after an ambiguous loss only for RPCs declaring
//! [`Rpc::IDEMPOTENT`]. A node that crashed and restarted on the same
//! address resets its peers' stale connections at once (its QUIC stateless
//! reset key is derived from its private key), so nobody waits for an idle
//! timeout. Dead peers are detected by the QUIC idle timeout
//! ([`TransportConfig::peer_timeout`]) with keep-alives at a quarter of it.
//!
//! # The fault model
//!
//! [`NetworkModel`] (one shared handle per test cluster, or one per process
//! loaded from a TOML profile) injects, per message: the one-way latency of
//! the region pair from a [`LatencyMatrix`] (the shipped profile has
//! CockroachDB's demo round trips: us-east1/us-west1 66 ms,
//! us-east1/europe-west1 64 ms, us-west1/europe-west1 146 ms), partitions of
//! two node sets in one or both directions, isolation of a node, and random
//! drops with a seedable probability; [`NetworkModel::heal`] removes the
//! faults. Faults act on messages, not packets: connections stay up, and a
//! blocked call times out. Without a model (the default) the transport does
//! not look at it at all; an idle model costs one atomic load per message.

pub mod certs;
pub mod error;
pub mod frame;
pub mod metrics;
pub mod network_model;
pub mod rpc;
pub mod tls;
mod transport;

pub use certs::{create_ca, create_node_cert, load_node_identity, NodeIdentity};
pub use error::{CertError, TransportError};
// Node identity and locality live in `meridian-topology`, below the
// transport; re-exported for the transport's own callers.
pub use meridian_topology::{Locality, NodeId, ParseLocalityError};
pub use metrics::PeerStatsSnapshot;
pub use network_model::{LatencyMatrix, NetworkModel};
pub use rpc::{RequestContext, Rpc};
pub use tls::install_crypto_provider;
pub use transport::{Transport, TransportConfig};
