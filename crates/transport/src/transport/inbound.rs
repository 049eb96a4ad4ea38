//! The serving side: accepting connections and streams, reading one frame
//! per stream, refusing bad frames and clocks, running the handler and
//! writing its response.
//!
//! Owns: everything a node does with bytes its peers sent. Does not own:
//! handler typing ([`crate::rpc`]) or the frame format ([`crate::frame`]).

use std::task::Poll;

use super::outbound::WriteFrame;
use super::*;

/// Application error code on a stream whose frame we refused.
const STREAM_REFUSED: u32 = 1;

impl Inner {
    /// Serves one request (on a bidirectional stream, `reply` is its send
    /// half) or one-way message (`reply` is `None`).
    async fn serve(&self, mut recv: quinn::RecvStream, mut reply: Option<quinn::SendStream>) {
        let frame = match read_frame(&mut recv, self.max_frame_size).await {
            Ok(frame) => frame,
            Err(ReadFrameError::Frame(e)) => {
                self.malformed_frames.fetch_add(1, Relaxed);
                warn!(node = self.node_id(), "refusing inbound frame: {e}");
                let _ = recv.stop(STREAM_REFUSED.into());
                if let Some(send) = reply.take() {
                    self.reply(send, 0, Err(e.into()), None).await;
                }
                return;
            }
            Err(ReadFrameError::Stream(e)) => {
                debug!(node = self.node_id(), "inbound stream failed: {e}");
                return;
            }
        };
        let frame_len = frame.len() + LENGTH_PREFIX_LEN;
        let (env, body) = match decode_frame(frame) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.malformed_frames.fetch_add(1, Relaxed);
                warn!(node = self.node_id(), "refusing inbound frame: {e}");
                if let Some(send) = reply.take() {
                    self.reply(send, 0, Err(e.into()), None).await;
                }
                return;
            }
        };
        let stats = self.stats.get(env.from);
        // A partition seen from this side: stay silent, as a cut link would.
        // The caller gives up at its timeout, which stops the stream.
        if let Some(net) = self.active_network() {
            if net.is_blocked(env.from, self.node_id()) {
                stats.dropped_by_model.fetch_add(1, Relaxed);
                if let Some(send) = reply {
                    let _ = send.stopped().await;
                }
                return;
            }
        }
        stats.received(frame_len);
        let result = match self.clock.update(env.timestamp) {
            Err(e) => {
                stats.refused_frames.fetch_add(1, Relaxed);
                warn!(
                    node = self.node_id(),
                    from = env.from,
                    kind = env.kind,
                    "refusing message: {e}"
                );
                Err(WireError::ClockOffset {
                    remote: e.remote,
                    local: e.local,
                    ahead_nanos: nanos(e.ahead),
                    max_offset_nanos: nanos(e.max_offset),
                })
            }
            Ok(_) => match self.handlers.get(env.kind) {
                None => {
                    debug!(
                        node = self.node_id(),
                        from = env.from,
                        kind = env.kind,
                        "unknown kind"
                    );
                    Err(WireError::UnknownKind { kind: env.kind })
                }
                Some(handler) => {
                    let ctx = RequestContext {
                        from: env.from,
                        timestamp: env.timestamp,
                    };
                    run_handler(&*handler, ctx, body).await
                }
            },
        };
        match reply {
            Some(send) => self.reply(send, env.kind, result, Some(&stats)).await,
            None => {
                if let Err(e) = result {
                    warn!(
                        node = self.node_id(),
                        from = env.from,
                        kind = env.kind,
                        "one-way message failed: {e}"
                    );
                }
            }
        }
    }

    async fn reply(
        &self,
        mut send: quinn::SendStream,
        kind: u16,
        result: Result<Bytes, WireError>,
        stats: Option<&PeerStats>,
    ) {
        let (error, mut body) = match result {
            Ok(body) => (None, body),
            Err(e) => (Some(e), Bytes::new()),
        };
        let mut env = Envelope {
            kind,
            from: self.node_id(),
            timestamp: self.clock.now(),
            error,
        };
        let header = match encode_header(&env, body.len(), self.max_frame_size) {
            Ok(header) => header,
            Err(e) => {
                warn!(node = self.node_id(), kind, "cannot send response: {e}");
                env.error = Some(e.into());
                body = Bytes::new();
                match encode_header(&env, 0, self.max_frame_size) {
                    Ok(header) => header,
                    Err(_) => {
                        let _ = send.reset(STREAM_REFUSED.into());
                        return;
                    }
                }
            }
        };
        let len = header.len() + body.len();
        if send.pipe_frame(&header, &body).await.is_ok() {
            let _ = send.finish();
            if let Some(stats) = stats {
                stats.sent(len);
            }
        }
    }
}

/// Accepts connections until the endpoint closes. Holds only a weak
/// reference, so dropping every `Transport` handle ends it.
pub(super) async fn accept_loop(transport: Weak<Inner>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        if transport.strong_count() == 0 {
            incoming.refuse();
            break;
        }
        tokio::spawn(serve_connection(transport.clone(), incoming));
    }
}

async fn serve_connection(transport: Weak<Inner>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            warn!(%remote, "inbound connection failed during the handshake: {e}");
            return;
        }
    };
    loop {
        let (recv, reply) = tokio::select! {
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => (recv, Some(send)),
                Err(e) => { debug!(%remote, "inbound connection closed: {e}"); return; }
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => (recv, None),
                Err(e) => { debug!(%remote, "inbound connection closed: {e}"); return; }
            },
        };
        let Some(inner) = transport.upgrade() else {
            return;
        };
        // Serve the stream right here if it completes without waiting (a
        // small request that arrived whole, a handler that answers at once),
        // saving a task hand-off; otherwise finish it on a task of its own,
        // so slow handlers never hold up the next stream.
        let mut serving = Box::pin(async move { inner.serve(recv, reply).await });
        let first = std::future::poll_fn(|cx| Poll::Ready(serving.as_mut().poll(cx))).await;
        if first.is_pending() {
            tokio::spawn(serving);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
