//! Typed RPCs and the receiving side's handler registry.
//!
//! An RPC is a type implementing [`Rpc`]: a numeric `KIND` that goes on the
//! wire, a request type and a response type. Application errors belong in
//! the response type (the kv layer puts its own error enum there); the
//! transport only reports transport failures.
//!
//! ```
//! use meridian_transport::Rpc;
//! use serde::{Deserialize, Serialize};
//!
//! struct Heartbeat;
//! #[derive(Serialize, Deserialize)]
//! struct Ping { seq: u64 }
//! impl Rpc for Heartbeat {
//!     const KIND: u16 = 100;
//!     const NAME: &'static str = "heartbeat";
//!     const IDEMPOTENT: bool = true;
//!     type Request = Ping;
//!     type Response = u64;
//! }
//! ```
//!
//! Owns: the trait, the type-erased handlers (`Handlers`) that decode a
//! body, run the async handler (catching panics) and encode its response.
//! Does not own: streams, frames or timeouts (the `transport` module).

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use meridian_hlc::Timestamp;
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::TransportError;
use crate::frame::WireError;
use meridian_topology::NodeId;

/// Kinds below this are reserved for the transport's own messages.
pub const FIRST_USER_KIND: u16 = 16;

/// A request/response message type. `KIND` must be unique in the cluster
/// and at least [`FIRST_USER_KIND`].
///
/// Handlers are async and must not block: the first poll of a handler runs
/// on the connection's task (a handler that answers at once costs no task
/// hand-off), so blocking there delays the connection's next streams. Move
/// blocking work to `tokio::task::spawn_blocking`.
pub trait Rpc: Send + Sync + 'static {
    /// The number that identifies this RPC on the wire.
    const KIND: u16;
    /// A name for logs and errors.
    const NAME: &'static str;
    /// Whether running the request twice is harmless. Only idempotent calls
    /// are retried by the transport after a connection broke with the request
    /// possibly delivered (for example when the peer crashed and restarted).
    const IDEMPOTENT: bool = false;
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// What a handler learns about the message besides its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// The node that sent the message (as it claims in the envelope; any
    /// holder of a cluster certificate may claim any id).
    pub from: NodeId,
    /// The sender's HLC timestamp; the local clock has already been updated
    /// with it.
    pub timestamp: Timestamp,
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, WireError>> + Send>>;

/// A handler with its types erased: bytes in, bytes out.
pub(crate) trait ErasedHandler: Send + Sync {
    fn name(&self) -> &'static str;
    fn handle(&self, ctx: RequestContext, body: Bytes) -> HandlerFuture;
}

struct TypedHandler<R, F> {
    f: F,
    _rpc: PhantomData<fn() -> R>,
}

impl<R, F, Fut> ErasedHandler for TypedHandler<R, F>
where
    R: Rpc,
    F: Fn(RequestContext, R::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R::Response> + Send + 'static,
{
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn handle(&self, ctx: RequestContext, body: Bytes) -> HandlerFuture {
        let request = match postcard::from_bytes::<R::Request>(&body) {
            Ok(request) => request,
            Err(e) => {
                let err = WireError::Decode(format!("{} request: {e}", R::NAME));
                return Box::pin(std::future::ready(Err(err)));
            }
        };
        let response = (self.f)(ctx, request);
        Box::pin(async move {
            let response = response.await;
            postcard::to_allocvec(&response)
                .map(Bytes::from)
                .map_err(|e| WireError::Encode(format!("{} response: {e}", R::NAME)))
        })
    }
}

/// A raw handler: the body bytes in, the response body bytes out.
struct RawHandler<F> {
    name: &'static str,
    f: F,
}

impl<F, Fut> ErasedHandler for RawHandler<F>
where
    F: Fn(RequestContext, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn handle(&self, ctx: RequestContext, body: Bytes) -> HandlerFuture {
        let fut = (self.f)(ctx, body);
        Box::pin(async move { Ok(fut.await) })
    }
}

/// The handlers of one node, by kind.
#[derive(Default)]
pub(crate) struct Handlers {
    by_kind: RwLock<HashMap<u16, Arc<dyn ErasedHandler>>>,
}

impl Handlers {
    pub(crate) fn register<R, F, Fut>(&self, f: F) -> Result<(), TransportError>
    where
        R: Rpc,
        F: Fn(RequestContext, R::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        check_user_kind(R::KIND)?;
        self.register_reserved::<R, F, Fut>(f)
    }

    /// Registers without the reserved-kind check (the transport's own RPCs).
    pub(crate) fn register_reserved<R, F, Fut>(&self, f: F) -> Result<(), TransportError>
    where
        R: Rpc,
        F: Fn(RequestContext, R::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        self.insert(
            R::KIND,
            Arc::new(TypedHandler::<R, F> {
                f,
                _rpc: PhantomData,
            }),
        )
    }

    pub(crate) fn register_raw<F, Fut>(
        &self,
        kind: u16,
        name: &'static str,
        f: F,
    ) -> Result<(), TransportError>
    where
        F: Fn(RequestContext, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Bytes> + Send + 'static,
    {
        check_user_kind(kind)?;
        self.insert(kind, Arc::new(RawHandler { name, f }))
    }

    fn insert(&self, kind: u16, handler: Arc<dyn ErasedHandler>) -> Result<(), TransportError> {
        let mut map = self.by_kind.write();
        if map.contains_key(&kind) {
            return Err(TransportError::InvalidKind {
                kind,
                reason: "a handler is already registered for it",
            });
        }
        map.insert(kind, handler);
        Ok(())
    }

    /// Drops every handler. Handlers often hold the service that owns the
    /// transport; dropping them at shutdown breaks that cycle, so the
    /// endpoint and its socket are released.
    pub(crate) fn clear(&self) {
        self.by_kind.write().clear();
    }

    pub(crate) fn get(&self, kind: u16) -> Option<Arc<dyn ErasedHandler>> {
        self.by_kind.read().get(&kind).cloned()
    }
}

fn check_user_kind(kind: u16) -> Result<(), TransportError> {
    if kind < FIRST_USER_KIND {
        return Err(TransportError::InvalidKind {
            kind,
            reason: "kinds below 16 are reserved for the transport",
        });
    }
    Ok(())
}

/// Runs a handler, turning a panic (while building or polling its future)
/// into an error the caller can be told about. The node stays up.
pub(crate) async fn run_handler(
    handler: &dyn ErasedHandler,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Bytes, WireError> {
    let panicked = || WireError::HandlerPanicked {
        rpc: handler.name().to_string(),
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(ctx, body))) {
        Ok(fut) => CatchUnwind(fut).await.unwrap_or_else(|()| Err(panicked())),
        Err(_) => Err(panicked()),
    }
}

/// A future that completes with `Err(())` if polling its inner future panics.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// The transport's own round-trip probe (kind 0): measures RTT, including
/// the network model's delays.
pub(crate) struct Ping;

impl Rpc for Ping {
    const KIND: u16 = 0;
    const NAME: &'static str = "ping";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = ();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Rpc for Echo {
        const KIND: u16 = 20;
        const NAME: &'static str = "echo";
        type Request = String;
        type Response = String;
    }

    fn ctx() -> RequestContext {
        RequestContext {
            from: 1,
            timestamp: Timestamp::ZERO,
        }
    }

    #[tokio::test]
    async fn typed_handler_decodes_runs_and_encodes() {
        let h = Handlers::default();
        h.register::<Echo, _, _>(|_, s: String| async move { s.to_uppercase() })
            .unwrap();
        let body = Bytes::from(postcard::to_allocvec(&"abc".to_string()).unwrap());
        let out = run_handler(&*h.get(20).unwrap(), ctx(), body)
            .await
            .unwrap();
        assert_eq!(postcard::from_bytes::<String>(&out).unwrap(), "ABC");
        // A body that is not a String: a typed decode error, no panic.
        let err = run_handler(&*h.get(20).unwrap(), ctx(), Bytes::from_static(&[0xff]))
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Decode(_)), "{err}");
    }

    #[tokio::test]
    async fn registration_rules() {
        let h = Handlers::default();
        h.register::<Echo, _, _>(|_, s| async move { s }).unwrap();
        let dup = h.register::<Echo, _, _>(|_, s| async move { s });
        assert!(matches!(
            dup,
            Err(TransportError::InvalidKind { kind: 20, .. })
        ));
        let reserved = h.register::<Ping, _, _>(|_, ()| async {});
        assert!(matches!(
            reserved,
            Err(TransportError::InvalidKind { kind: 0, .. })
        ));
        assert!(h.get(21).is_none());
    }

    #[tokio::test]
    async fn panics_become_errors() {
        let h = Handlers::default();
        h.register::<Echo, _, _>(|_, s: String| async move {
            if s == "boom" {
                panic!("handler panic (expected by this test)");
            }
            s
        })
        .unwrap();
        let body = Bytes::from(postcard::to_allocvec(&"boom".to_string()).unwrap());
        let err = run_handler(&*h.get(20).unwrap(), ctx(), body)
            .await
            .unwrap_err();
        assert_eq!(err, WireError::HandlerPanicked { rpc: "echo".into() });
    }
}
