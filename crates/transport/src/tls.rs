//! TLS and QUIC configuration built from a [`NodeIdentity`].
//!
//! Mutual TLS 1.3, both directions checked against the cluster CA: the
//! server side uses rustls' `WebPkiClientVerifier` (a client must present a
//! certificate chaining to the CA), the client side a root store holding only
//! the CA and the server name [`NODE_SERVER_NAME`]. A peer whose certificate
//! comes from another CA fails the handshake; no frame of it is ever read.
//!
//! One rustls crypto provider for the whole process: *ring*. rustls panics
//! when it must pick a process default and finds two providers compiled in,
//! so the workspace compiles ring only, and [`install_crypto_provider`]
//! installs it once as the process default (other crates building rustls
//! configs, such as a future pgwire listener, then find it).
//!
//! Also owns the QUIC transport parameters (stream limits, flow-control
//! windows, keep-alive and idle timeout) and the keys that let a restarted
//! node reset its peers' stale connections (`endpoint_config`).
//! Does not own: certificate files ([`crate::certs`]) or the endpoint's
//! life ([`Transport`](crate::Transport)).

use std::sync::{Arc, Once};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::certs::{NodeIdentity, NODE_SERVER_NAME};
use crate::error::CertError;

/// The ALPN protocol id of Meridian's node-to-node protocol.
pub const ALPN: &[u8] = b"meridian/1";

/// QUIC tuning knobs, taken from the [`TransportConfig`](crate::TransportConfig).
#[derive(Debug, Clone)]
pub(crate) struct QuicParams {
    pub max_concurrent_streams: u32,
    pub stream_receive_window: u32,
    pub connection_receive_window: u32,
    pub send_window: u64,
    pub idle_timeout: Duration,
    pub keep_alive_interval: Duration,
}

/// Installs *ring* as the process-wide default rustls crypto provider, once.
/// Safe to call any number of times from any thread.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider was installed first, which is fine: we
        // pass our provider explicitly to every config we build.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The crypto provider every config of this crate is built with.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    install_crypto_provider();
    match CryptoProvider::get_default() {
        Some(provider) => provider.clone(),
        None => Arc::new(rustls::crypto::ring::default_provider()),
    }
}

pub(crate) fn root_store(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(|e| {
            CertError::Tls(format!("CA certificate not usable as a trust anchor: {e}"))
        })?;
    }
    Ok(roots)
}

fn transport_config(p: &QuicParams) -> Result<Arc<quinn::TransportConfig>, CertError> {
    let mut t = quinn::TransportConfig::default();
    let streams = quinn::VarInt::from_u32(p.max_concurrent_streams);
    t.max_concurrent_bidi_streams(streams)
        .max_concurrent_uni_streams(streams)
        .stream_receive_window(quinn::VarInt::from_u32(p.stream_receive_window))
        .receive_window(quinn::VarInt::from_u32(p.connection_receive_window))
        .send_window(p.send_window)
        .keep_alive_interval(Some(p.keep_alive_interval))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(p.idle_timeout)
                .map_err(|e| CertError::Tls(format!("idle timeout: {e}")))?,
        ));
    Ok(Arc::new(t))
}

/// The accepting side: requires a client certificate signed by the CA.
pub(crate) fn server_config(
    id: &NodeIdentity,
    params: &QuicParams,
) -> Result<quinn::ServerConfig, CertError> {
    let provider = crypto_provider();
    let roots = Arc::new(root_store(&id.ca_certs)?);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| CertError::Tls(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CertError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![id.cert.clone()], id.key.clone_key())
        .map_err(|e| CertError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| CertError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport_config(params)?);
    // Nodes do not roam: a peer's address is fixed by the address book.
    config.migration(false);
    Ok(config)
}

/// The dialing side: presents our certificate, trusts only the CA.
pub(crate) fn client_config(
    id: &NodeIdentity,
    params: &QuicParams,
) -> Result<quinn::ClientConfig, CertError> {
    let provider = crypto_provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CertError::Tls(e.to_string()))?
        .with_root_certificates(root_store(&id.ca_certs)?)
        .with_client_auth_cert(vec![id.cert.clone()], id.key.clone_key())
        .map_err(|e| CertError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| CertError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport_config(params)?);
    Ok(config)
}

/// The endpoint configuration, with a stateless-reset key and connection-id
/// generator both derived from the node's private key.
///
/// Why stable: when a node crashes and restarts on the same address, its
/// peers still hold connections to the dead incarnation. The new
/// incarnation answers their next packet with a QUIC stateless reset, which
/// it only sends for a connection id it recognizes as one of its own, and
/// which a peer only believes if the reset token matches the one the old
/// incarnation issued. Both hold when the keys survive the restart. With
/// quinn's defaults (random keys per start) the peers would instead wait
/// for the idle timeout before dialing again.
pub(crate) fn endpoint_config(id: &NodeIdentity) -> quinn::EndpointConfig {
    let reset_key = derive_key(id, b"meridian/quic-stateless-reset/v1");
    let cid_key = derive_key(id, b"meridian/quic-connection-id/v1");
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || {
        Box::new(StableCidGenerator {
            key: cid_key.clone(),
        })
    });
    config
}

fn derive_key(id: &NodeIdentity, label: &[u8]) -> ring::hmac::Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(label);
    ctx.update(id.key.secret_der());
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ctx.finish().as_ref())
}

const CID_LEN: usize = 8;
const CID_NONCE_LEN: usize = 3;

/// 8-byte connection ids: a random nonce and a keyed tag over it, so the
/// endpoint (and its next incarnation) can tell its own ids from noise.
struct StableCidGenerator {
    key: ring::hmac::Key,
}

impl StableCidGenerator {
    fn tag(&self, nonce: &[u8]) -> [u8; CID_LEN - CID_NONCE_LEN] {
        let mut tag = [0; CID_LEN - CID_NONCE_LEN];
        tag.copy_from_slice(
            &ring::hmac::sign(&self.key, nonce).as_ref()[..CID_LEN - CID_NONCE_LEN],
        );
        tag
    }
}

impl quinn::ConnectionIdGenerator for StableCidGenerator {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let mut cid = [0u8; CID_LEN];
        cid[..CID_NONCE_LEN].copy_from_slice(&rand::random::<[u8; CID_NONCE_LEN]>());
        let tag = self.tag(&cid[..CID_NONCE_LEN]);
        cid[CID_NONCE_LEN..].copy_from_slice(&tag);
        quinn::ConnectionId::new(&cid)
    }

    fn validate(&self, cid: &quinn::ConnectionId) -> Result<(), quinn_proto::InvalidCid> {
        if cid.len() == CID_LEN && cid[CID_NONCE_LEN..] == self.tag(&cid[..CID_NONCE_LEN]) {
            Ok(())
        } else {
            Err(quinn_proto::InvalidCid)
        }
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// The server name clients verify. Node certificates carry it as a DNS name.
pub(crate) const SERVER_NAME: &str = NODE_SERVER_NAME;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_is_ring_and_install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        let p = crypto_provider();
        assert!(p
            .cipher_suites
            .iter()
            .any(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
        assert!(CryptoProvider::get_default().is_some());
    }
}
