//! Node identity certificates: a cluster CA and one certificate per node,
//! kept in a certs directory laid out like CockroachDB's.
//!
//! | file      | what                                   | mode |
//! |-----------|----------------------------------------|------|
//! | `ca.crt`  | the cluster CA certificate(s) (PEM); more than one while a CA is rotated | 0644 |
//! | `ca.key`  | the CA's private key (PEM, PKCS#8)     | 0600 |
//! | `node.crt`| this node's certificate, signed by the CA | 0644 |
//! | `node.key`| this node's private key                | 0600 |
//!
//! Node ids are assigned when a node joins, after its certificate was made,
//! so a node certificate names no node: every one carries the DNS name
//! [`NODE_SERVER_NAME`] (`node`) plus whatever hosts and IP addresses the
//! operator gives, and is valid for both TLS server and client use. A peer is
//! authentic when its certificate chains to the cluster CA, checked in both
//! directions of every handshake (see [`crate::tls`]).
//!
//! Owns: creating the CA ([`create_ca`]) and node certificates
//! ([`create_node_cert`]), loading and checking them ([`load_node_identity`]).
//! Does not own: the TLS configuration built from a [`NodeIdentity`]
//! ([`crate::tls`]) nor the CLI commands that call these functions.
//! Every failure is a typed [`CertError`]; nothing here panics on bad files.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::CertError;

/// The CA certificate's file name in a certs directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA private key's file name.
pub const CA_KEY_FILE: &str = "ca.key";
/// The node certificate's file name.
pub const NODE_CERT_FILE: &str = "node.crt";
/// The node private key's file name.
pub const NODE_KEY_FILE: &str = "node.key";
/// The DNS name every node certificate carries and every client verifies.
pub const NODE_SERVER_NAME: &str = "node";

const CA_VALIDITY_DAYS: i64 = 10 * 365;
const NODE_VALIDITY_DAYS: i64 = 5 * 365;

/// What a node needs to authenticate itself and its peers: the cluster CA
/// certificate, its own certificate and private key.
pub struct NodeIdentity {
    pub(crate) ca_certs: Vec<CertificateDer<'static>>,
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl NodeIdentity {
    /// The trusted CA certificates (DER): the cluster CA, plus its
    /// successor while the CA is being rotated.
    pub fn ca_certs(&self) -> &[CertificateDer<'static>] {
        &self.ca_certs
    }

    /// This node's certificate (DER).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        NodeIdentity {
            ca_certs: self.ca_certs.clone(),
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("ca_certs", &self.ca_certs.len())
            .field("cert_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

/// Creates a new cluster CA in `dir` (created if needed): `ca.crt` and
/// `ca.key`. Refuses to overwrite an existing CA.
pub fn create_ca(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    refuse_existing(&cert_path)?;
    refuse_existing(&key_path)?;

    let key = KeyPair::generate().map_err(generate_err)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("Meridian CA");
    // The CA signs node certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(generate_err)?;

    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(())
}

/// Creates `node.crt` and `node.key` in `dir`, signed by the CA found there
/// (`ca.crt`, `ca.key`). The certificate names [`NODE_SERVER_NAME`] and each
/// of `hosts` (IP addresses become IP names, anything else a DNS name).
/// Refuses to overwrite an existing node certificate or key.
pub fn create_node_cert(dir: &Path, hosts: &[&str]) -> Result<(), CertError> {
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(NODE_CERT_FILE);
    let key_path = dir.join(NODE_KEY_FILE);
    let ca_cert_pem = read_text(&ca_cert_path)?;
    let ca_key_pem = read_text(&ca_key_path)?;
    refuse_existing(&cert_path)?;
    refuse_existing(&key_path)?;

    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| CertError::Invalid {
        path: ca_key_path.clone(),
        reason: format!("not a usable private key: {e}"),
    })?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).map_err(|e| CertError::Invalid {
            path: ca_cert_path.clone(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;

    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(NODE_SERVER_NAME);
    params.subject_alt_names = subject_alt_names(hosts)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, NODE_VALIDITY_DAYS);
    let key = KeyPair::generate().map_err(generate_err)?;
    let cert = params.signed_by(&key, &issuer).map_err(generate_err)?;

    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(())
}

/// Loads `ca.crt`, `node.crt` and `node.key` from `dir` and checks that they
/// fit together: the key matches the certificate, and the certificate chains
/// to a CA of `ca.crt`, is currently valid, names [`NODE_SERVER_NAME`] and
/// may be used as both TLS server and client. `ca.key` is not needed. Every
/// certificate in `ca.crt` is trusted (CA rotation appends the new CA).
pub fn load_node_identity(dir: &Path) -> Result<NodeIdentity, CertError> {
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let cert_path = dir.join(NODE_CERT_FILE);
    let key_path = dir.join(NODE_KEY_FILE);
    let ca_certs = read_certs(&ca_cert_path)?;
    let cert = read_certs(&cert_path)?.swap_remove(0);
    check_exists(&key_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| CertError::Invalid {
        path: key_path.clone(),
        reason: format!("no usable PEM private key: {e}"),
    })?;
    let identity = NodeIdentity {
        ca_certs,
        cert,
        key,
    };
    verify_identity(&identity, &cert_path, &key_path)?;
    Ok(identity)
}

/// Checks the key against the certificate and the certificate against the CA,
/// as both a server and a client verifier would.
fn verify_identity(id: &NodeIdentity, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
    let provider = crate::tls::crypto_provider();
    rustls::sign::CertifiedKey::from_der(vec![id.cert.clone()], id.key.clone_key(), &provider)
        .map_err(|e| CertError::Invalid {
            path: key_path.to_path_buf(),
            reason: format!("private key does not match {}: {e}", cert_path.display()),
        })?;

    let roots = Arc::new(crate::tls::root_store(&id.ca_certs)?);
    let not_signed = |e: &dyn fmt::Display| CertError::Invalid {
        path: cert_path.to_path_buf(),
        reason: format!("not a valid node certificate of the CA in {CA_CERT_FILE}: {e}"),
    };
    let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .map_err(|e| CertError::Tls(e.to_string()))?;
    let name = ServerName::try_from(NODE_SERVER_NAME).map_err(|e| CertError::Tls(e.to_string()))?;
    server_verifier
        .verify_server_cert(&id.cert, &[], &name, &[], UnixTime::now())
        .map_err(|e| not_signed(&e))?;
    let client_verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| CertError::Tls(e.to_string()))?;
    client_verifier
        .verify_client_cert(&id.cert, &[], UnixTime::now())
        .map_err(|e| not_signed(&e))?;
    Ok(())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Meridian");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn subject_alt_names(hosts: &[&str]) -> Result<Vec<SanType>, CertError> {
    let mut sans = vec![dns_name(NODE_SERVER_NAME)?];
    for host in hosts {
        let host = host.trim();
        let san = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => dns_name(host)?,
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

fn dns_name(host: &str) -> Result<SanType, CertError> {
    // rcgen accepts any IA5 string; check the DNS syntax ourselves so that a
    // typo fails here instead of at the first handshake.
    ServerName::try_from(host).map_err(|e| CertError::InvalidHost {
        host: host.to_string(),
        reason: e.to_string(),
    })?;
    let name = host
        .try_into()
        .map_err(|e: rcgen::Error| CertError::InvalidHost {
            host: host.to_string(),
            reason: e.to_string(),
        })?;
    Ok(SanType::DnsName(name))
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // Tolerate clocks an hour behind the one that made the certificate.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f).max(1); // positive, no leading zero byte
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

fn generate_err(e: rcgen::Error) -> CertError {
    CertError::Generate(e.to_string())
}

fn check_exists(path: &Path) -> Result<(), CertError> {
    match path.try_exists() {
        Ok(true) => Ok(()),
        Ok(false) => Err(CertError::Missing {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(CertError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn refuse_existing(path: &Path) -> Result<(), CertError> {
    match check_exists(path) {
        Ok(()) => Err(CertError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(CertError::Missing { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn read_text(path: &Path) -> Result<String, CertError> {
    check_exists(path)?;
    fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file; at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    check_exists(path)?;
    let invalid = |reason: String| CertError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("cannot read PEM: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in file".to_string()));
    }
    Ok(certs)
}

/// Writes a file that must not exist yet; private keys are readable by the
/// owner only.
fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<(), CertError> {
    let io_err = |source| CertError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(e)
        }
    })?;
    file.write_all(contents).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path()).unwrap();
        create_node_cert(dir.path(), &["localhost", "127.0.0.1", "db1.example.com"]).unwrap();
        let id = load_node_identity(dir.path()).unwrap();
        assert!(!id.cert().is_empty() && id.ca_certs().len() == 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(NODE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path()).unwrap();
        assert!(matches!(
            create_ca(dir.path()),
            Err(CertError::AlreadyExists { .. })
        ));
        create_node_cert(dir.path(), &[]).unwrap();
        assert!(matches!(
            create_node_cert(dir.path(), &[]),
            Err(CertError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn missing_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_node_cert(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, CertError::Missing { ref path } if path.ends_with(CA_CERT_FILE)));
        let err = load_node_identity(dir.path()).unwrap_err();
        assert!(matches!(err, CertError::Missing { .. }), "{err}");
        create_ca(dir.path()).unwrap();
        let err = load_node_identity(dir.path()).unwrap_err();
        assert!(matches!(err, CertError::Missing { ref path } if path.ends_with(NODE_CERT_FILE)));
    }

    #[test]
    fn garbage_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path()).unwrap();
        create_node_cert(dir.path(), &[]).unwrap();
        fs::write(dir.path().join(NODE_KEY_FILE), "not a key").unwrap();
        let err = load_node_identity(dir.path()).unwrap_err();
        assert!(matches!(err, CertError::Invalid { .. }), "{err}");
        fs::write(
            dir.path().join(CA_CERT_FILE),
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
        )
        .unwrap();
        let err = load_node_identity(dir.path()).unwrap_err();
        assert!(matches!(err, CertError::Invalid { .. }), "{err}");
    }

    #[test]
    fn node_cert_of_another_ca_is_rejected_at_load() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        create_ca(a.path()).unwrap();
        create_ca(b.path()).unwrap();
        create_node_cert(b.path(), &[]).unwrap();
        // Node files of CA b next to CA a's certificate.
        for f in [NODE_CERT_FILE, NODE_KEY_FILE] {
            fs::copy(b.path().join(f), a.path().join(f)).unwrap();
        }
        let err = load_node_identity(a.path()).unwrap_err();
        assert!(
            matches!(err, CertError::Invalid { ref path, .. } if path.ends_with(NODE_CERT_FILE)),
            "{err}"
        );
    }

    #[test]
    fn every_ca_in_ca_crt_is_trusted() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        create_ca(old.path()).unwrap();
        create_ca(new.path()).unwrap();
        create_node_cert(new.path(), &[]).unwrap();
        // ca.crt lists the old CA first, then the new one that signed node.crt.
        let both = fs::read_to_string(old.path().join(CA_CERT_FILE)).unwrap()
            + &fs::read_to_string(new.path().join(CA_CERT_FILE)).unwrap();
        fs::remove_file(new.path().join(CA_CERT_FILE)).unwrap();
        fs::write(new.path().join(CA_CERT_FILE), both).unwrap();
        let id = load_node_identity(new.path()).unwrap();
        assert_eq!(id.ca_certs().len(), 2);
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        create_ca(dir.path()).unwrap();
        create_node_cert(dir.path(), &[]).unwrap();
        fs::copy(
            dir.path().join(CA_CERT_FILE),
            other.path().join(CA_CERT_FILE),
        )
        .unwrap();
        fs::copy(dir.path().join(CA_KEY_FILE), other.path().join(CA_KEY_FILE)).unwrap();
        create_node_cert(other.path(), &[]).unwrap();
        fs::copy(
            other.path().join(NODE_KEY_FILE),
            dir.path().join("other.key"),
        )
        .unwrap();
        fs::rename(dir.path().join("other.key"), dir.path().join(NODE_KEY_FILE)).unwrap();
        let err = load_node_identity(dir.path()).unwrap_err();
        assert!(
            matches!(err, CertError::Invalid { ref path, .. } if path.ends_with(NODE_KEY_FILE)),
            "{err}"
        );
    }

    #[test]
    fn invalid_host_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path()).unwrap();
        let err = create_node_cert(dir.path(), &["not a host!"]).unwrap_err();
        assert!(matches!(err, CertError::InvalidHost { .. }), "{err}");
    }
}
