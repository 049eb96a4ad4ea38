//! The calling side: dialing and caching connections, calls (request,
//! response, timeout, one retry on a dead connection) and one-way sends,
//! with the network model applied on the way there and back.
//!
//! Owns: what happens between `Transport::call`/`send` and the bytes on a
//! stream. Does not own: the serving side ([`super::inbound`]).

use super::*;

/// Why one attempt at a call failed.
enum AttemptError {
    /// The request was certainly not delivered (opening the stream or
    /// writing it failed): safe to retry on a new connection.
    NotSent(quinn::ConnectionError),
    /// The connection broke after the request was written.
    Lost(quinn::ConnectionError),
    /// Anything else, already final.
    Final(TransportError),
}

impl Inner {
    /// The cached connection to `peer`, or a new one. Concurrent callers
    /// wait for a single dial. Callers bound the wait with their timeout.
    pub(super) async fn connection(
        &self,
        peer: &Peer,
    ) -> Result<quinn::Connection, TransportError> {
        if let Some(conn) = peer.cached() {
            return Ok(conn);
        }
        let _dialing = peer.dial.lock().await;
        if let Some(conn) = peer.cached() {
            return Ok(conn);
        }
        if self.closed.load(Relaxed) {
            return Err(TransportError::Closed);
        }
        let connecting = self
            .endpoint
            .connect(peer.addr, tls::SERVER_NAME)
            .map_err(|e| TransportError::Connect {
                to: peer.id,
                reason: e.to_string(),
            })?;
        let conn = connecting.await.map_err(|e| {
            if is_tls_failure(&e) {
                tls_error(peer.id, &e)
            } else {
                TransportError::Connect {
                    to: peer.id,
                    reason: e.to_string(),
                }
            }
        })?;
        debug!(node = self.node_id(), peer = peer.id, addr = %peer.addr, "connected");
        *peer.conn.lock() = Some(conn.clone());
        Ok(conn)
    }

    pub(super) async fn call(
        &self,
        to: NodeId,
        kind: u16,
        rpc: &'static str,
        idempotent: bool,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let peer = self.peer(to)?;
        peer.stats.calls.fetch_add(1, Relaxed);
        let deadline = Instant::now() + timeout;
        let result = self
            .call_peer(&peer, kind, rpc, idempotent, body, deadline, timeout)
            .await;
        if result.is_err() {
            peer.stats.call_errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// A call to whatever node listens at `addr`, on a connection dialed
    /// for this call only (the peer's id is not known yet).
    pub(super) async fn call_addr(
        &self,
        addr: SocketAddr,
        kind: u16,
        rpc: &'static str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        if self.closed.load(Relaxed) {
            return Err(TransportError::Closed);
        }
        let peer = Peer {
            id: UNKNOWN_NODE,
            addr,
            locality: Locality::default(),
            conn: Mutex::new(None),
            dial: tokio::sync::Mutex::new(()),
            stats: self.stats.get(UNKNOWN_NODE),
        };
        let deadline = Instant::now() + timeout;
        let result = self
            .call_peer(&peer, kind, rpc, false, body, deadline, timeout)
            .await;
        if let Some(conn) = peer.conn.lock().take() {
            conn.close(CLOSE_SHUTDOWN.into(), b"one call done");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_peer(
        &self,
        peer: &Peer,
        kind: u16,
        rpc: &'static str,
        idempotent: bool,
        body: Bytes,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let timed_out = || TransportError::Timeout {
            to: peer.id,
            rpc,
            timeout,
        };
        // 1. The way there: dropped messages look like a partition, which a
        //    caller only notices by its timeout.
        let header = self.header(kind, body.len())?;
        if let Some(net) = self.active_network() {
            let verdict = net.on_send(self.node_id(), &self.locality, peer.id, &peer.locality);
            if !delay(verdict, deadline, &peer.stats).await {
                return Err(timed_out());
            }
        }
        // 2. Write the request, read the response.
        let frame_len = header.len() + body.len();
        let exchange = self.exchange(peer, rpc, idempotent, header, body, frame_len);
        let response = tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| timed_out())??;
        let response_len = response.len() + LENGTH_PREFIX_LEN;
        let (env, body) = decode_frame(response).map_err(frame_error)?;
        peer.stats.received(response_len);
        // 3. The way back.
        if let Some(net) = self.active_network() {
            let verdict = net.on_send(peer.id, &peer.locality, self.node_id(), &self.locality);
            if !delay(verdict, deadline, &peer.stats).await {
                return Err(timed_out());
            }
        }
        // 4. The responder's clock, then its verdict.
        if let Err(e) = self.clock.update(env.timestamp) {
            peer.stats.refused_frames.fetch_add(1, Relaxed);
            warn!(
                node = self.node_id(),
                peer = peer.id,
                rpc,
                "refusing response: {e}"
            );
            return Err(clock_offset_error(self.node_id(), peer.id, &e));
        }
        match env.error {
            None => Ok(body),
            Some(err) => Err(remote_error(self.node_id(), peer.id, err)),
        }
    }

    /// Sends the request on the peer's connection and reads the response,
    /// dialing again once if the connection turns out to be dead.
    async fn exchange(
        &self,
        peer: &Peer,
        rpc: &'static str,
        idempotent: bool,
        header: Bytes,
        body: Bytes,
        frame_len: usize,
    ) -> Result<Bytes, TransportError> {
        let mut retried = false;
        loop {
            let conn = self.connection(peer).await?;
            let err = match self.attempt(&conn, &header, &body).await {
                Ok(response) => {
                    peer.stats.sent(frame_len);
                    return Ok(response);
                }
                Err(err) => err,
            };
            let (conn_err, delivered) = match err {
                AttemptError::Final(e) => {
                    peer.stats.sent(frame_len);
                    return Err(e);
                }
                AttemptError::NotSent(e) => (e, false),
                AttemptError::Lost(e) => (e, true),
            };
            peer.forget(&conn);
            if is_tls_failure(&conn_err) {
                return Err(tls_error(peer.id, &conn_err));
            }
            // Retry once: always if nothing was delivered; after a possible
            // delivery only if running the request twice is harmless.
            if !retried && (!delivered || idempotent) {
                debug!(
                    peer = peer.id,
                    rpc, "connection failed ({conn_err}); dialing again"
                );
                retried = true;
                continue;
            }
            let reason = conn_err.to_string();
            return Err(if delivered {
                TransportError::ConnectionLost {
                    to: peer.id,
                    rpc,
                    reason,
                }
            } else {
                TransportError::Connect {
                    to: peer.id,
                    reason,
                }
            });
        }
    }

    async fn attempt(
        &self,
        conn: &quinn::Connection,
        header: &Bytes,
        body: &Bytes,
    ) -> Result<Bytes, AttemptError> {
        let (mut send, mut recv) = conn.open_bi().await.map_err(AttemptError::NotSent)?;
        match send.pipe_frame(header, body).await {
            Ok(()) => {
                let _ = send.finish();
            }
            // The peer refused the frame and stopped reading; its reply
            // says why.
            Err(quinn::WriteError::Stopped(_)) => {}
            Err(quinn::WriteError::ConnectionLost(e)) => return Err(AttemptError::NotSent(e)),
            Err(e) => {
                return Err(AttemptError::Final(TransportError::Decode(format!(
                    "writing request: {e}"
                ))))
            }
        }
        read_frame(&mut recv, self.max_frame_size)
            .await
            .map_err(|e| match e {
                ReadFrameError::Frame(e) => AttemptError::Final(frame_error(e)),
                ReadFrameError::Stream(quinn::ReadError::ConnectionLost(e)) => {
                    AttemptError::Lost(e)
                }
                ReadFrameError::Stream(e) => {
                    AttemptError::Final(TransportError::Decode(format!("response stream: {e}")))
                }
            })
    }

    pub(super) async fn send(
        self: &Arc<Self>,
        to: NodeId,
        kind: u16,
        rpc: &'static str,
        body: Bytes,
    ) -> Result<(), TransportError> {
        let peer = self.peer(to)?;
        let header = self.header(kind, body.len())?;
        if let Some(net) = self.active_network() {
            match net.on_send(self.node_id(), &self.locality, peer.id, &peer.locality) {
                Verdict::Drop => {
                    peer.stats.dropped_by_model.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Verdict::Deliver(d) if !d.is_zero() => {
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        if let Err(e) = this.send_now(&peer, rpc, header, body).await {
                            debug!(peer = peer.id, rpc, "delayed one-way message lost: {e}");
                        }
                    });
                    return Ok(());
                }
                Verdict::Deliver(_) => {}
            }
        }
        self.send_now(&peer, rpc, header, body).await
    }

    async fn send_now(
        &self,
        peer: &Peer,
        rpc: &'static str,
        header: Bytes,
        body: Bytes,
    ) -> Result<(), TransportError> {
        let frame_len = header.len() + body.len();
        let run = async {
            let mut retried = false;
            loop {
                let conn = self.connection(peer).await?;
                let attempt = async {
                    let mut send = conn.open_uni().await?;
                    match send.pipe_frame(&header, &body).await {
                        Ok(()) | Err(quinn::WriteError::Stopped(_)) => {}
                        Err(quinn::WriteError::ConnectionLost(e)) => return Err(e),
                        Err(e) => {
                            debug!(peer = peer.id, rpc, "one-way write failed: {e}");
                        }
                    }
                    let _ = send.finish();
                    Ok(())
                };
                match attempt.await {
                    Ok(()) => {
                        peer.stats.sent(frame_len);
                        return Ok(());
                    }
                    Err(e) => {
                        peer.forget(&conn);
                        if is_tls_failure(&e) {
                            return Err(tls_error(peer.id, &e));
                        }
                        if retried {
                            return Err(TransportError::Connect {
                                to: peer.id,
                                reason: e.to_string(),
                            });
                        }
                        retried = true;
                    }
                }
            }
        };
        tokio::time::timeout(self.send_timeout, run)
            .await
            .map_err(|_| TransportError::Timeout {
                to: peer.id,
                rpc,
                timeout: self.send_timeout,
            })?
    }
}

/// Bodies up to this size are copied behind their header and written as one
/// chunk; larger ones are written as a chunk of their own, without a copy.
const COALESCE_LIMIT: usize = 16 << 10;

pub(super) trait WriteFrame {
    async fn pipe_frame(&mut self, header: &Bytes, body: &Bytes) -> Result<(), quinn::WriteError>;
}

impl WriteFrame for quinn::SendStream {
    async fn pipe_frame(&mut self, header: &Bytes, body: &Bytes) -> Result<(), quinn::WriteError> {
        if body.len() <= COALESCE_LIMIT {
            let mut frame = Vec::with_capacity(header.len() + body.len());
            frame.extend_from_slice(header);
            frame.extend_from_slice(body);
            self.write_chunk(Bytes::from(frame)).await
        } else {
            self.write_all_chunks(&mut [header.clone(), body.clone()])
                .await
        }
    }
}

/// Applies one network-model verdict: sleeps for the delay and returns true,
/// or (dropped, or the delay reaches past the deadline) sleeps until the
/// deadline and returns false.
async fn delay(verdict: Verdict, deadline: Instant, stats: &PeerStats) -> bool {
    match verdict {
        Verdict::Deliver(d) if d.is_zero() => true,
        Verdict::Deliver(d) => {
            let until = Instant::now() + d;
            if until > deadline {
                tokio::time::sleep_until(deadline).await;
                return false;
            }
            tokio::time::sleep_until(until).await;
            true
        }
        Verdict::Drop => {
            stats.dropped_by_model.fetch_add(1, Relaxed);
            tokio::time::sleep_until(deadline).await;
            false
        }
    }
}

fn clock_offset_error(refused_by: NodeId, from: NodeId, e: &ClockOffsetError) -> TransportError {
    TransportError::ClockOffset {
        refused_by,
        from,
        remote: e.remote,
        local: e.local,
        ahead: e.ahead,
        max_offset: e.max_offset,
    }
}

/// Maps a refusal sent back by `peer` (to a message of `me`) to our error
/// type.
fn remote_error(me: NodeId, peer: NodeId, err: WireError) -> TransportError {
    match err {
        WireError::UnknownKind { kind } => TransportError::UnknownKind { to: peer, kind },
        WireError::ClockOffset {
            remote,
            local,
            ahead_nanos,
            max_offset_nanos,
        } => TransportError::ClockOffset {
            refused_by: peer,
            from: me,
            remote,
            local,
            ahead: Duration::from_nanos(ahead_nanos),
            max_offset: Duration::from_nanos(max_offset_nanos),
        },
        WireError::FrameTooLarge { len, max } => TransportError::FrameTooLarge { len, max },
        WireError::Decode(detail) => TransportError::Decode(format!("at node {peer}: {detail}")),
        WireError::Encode(detail) => TransportError::Encode(format!("at node {peer}: {detail}")),
        WireError::HandlerPanicked { rpc } => TransportError::HandlerPanicked { to: peer, rpc },
    }
}

/// Whether a connection failed in the TLS handshake (QUIC crypto error
/// codes 0x100-0x1ff carry the TLS alert), on either side.
fn is_tls_failure(e: &quinn::ConnectionError) -> bool {
    let code = match e {
        quinn::ConnectionError::TransportError(t) => t.code,
        quinn::ConnectionError::ConnectionClosed(c) => c.error_code,
        _ => return false,
    };
    (0x100..0x200).contains(&u64::from(code))
}

fn tls_error(to: NodeId, e: &quinn::ConnectionError) -> TransportError {
    TransportError::Tls {
        to,
        reason: e.to_string(),
    }
}
