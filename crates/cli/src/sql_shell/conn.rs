//! Where `meridian sql` connects and the connection itself: the settings
//! from `--url` or `--host`/`--database`/`--user`, a tokio-postgres
//! client without TLS, the task that drives it (printing the server's
//! notices), and how a lost connection is recognized.
//!
//! TLS: the server's SQL listener does not speak TLS yet, so the shell
//! connects in plaintext. `--certs-dir` is accepted (it will carry the
//! client certificate) and a note says it is not used; a URL asking for
//! `sslmode=require` is refused with a message saying why.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// The default SQL address: a node's `--listen` address, on TCP.
pub const DEFAULT_HOST: &str = "127.0.0.1:26257";
pub const DEFAULT_DATABASE: &str = "defaultdb";
pub const DEFAULT_USER: &str = "root";

/// The connection flags of `meridian sql`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnFlags {
    /// A connection URL, postgres://USER[:PASSWORD]@HOST:PORT/DATABASE;
    /// --database and --user override its parts.
    #[arg(long, conflicts_with = "host")]
    pub url: Option<String>,
    /// A node's SQL address (its --sql-listen, by default its --listen
    /// address on TCP) [default: 127.0.0.1:26257].
    #[arg(long)]
    pub host: Option<String>,
    /// The database [default: defaultdb].
    #[arg(long, short = 'd')]
    pub database: Option<String>,
    /// The user [default: root]. A password, if the user needs one, comes
    /// from the URL or the PGPASSWORD environment variable.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// The cluster's certificates directory. Accepted for when the SQL
    /// listener speaks TLS; today the connection is plaintext.
    #[arg(long)]
    pub certs_dir: Option<PathBuf>,
}

/// A resolved place to connect to.
#[derive(Clone, Debug)]
pub struct Target {
    pub config: Config,
    /// `host:port`, for messages.
    pub addr: String,
    /// `user@host/db`, the prompt.
    pub label: String,
    /// Set when `--certs-dir` was given, which cannot be honoured yet.
    pub tls_note: Option<String>,
}

impl Target {
    pub fn from_flags(flags: &ConnFlags) -> Result<Target> {
        let mut config = match &flags.url {
            Some(url) => Config::from_str(url).map_err(|e| anyhow!("bad --url {url:?}: {e}"))?,
            None => {
                let mut config = Config::new();
                let (host, port) = parse_host(flags.host.as_deref().unwrap_or(DEFAULT_HOST))?;
                config.host(host).port(port);
                config
            }
        };
        if config.get_hosts().is_empty() {
            config.host("127.0.0.1");
        }
        if config.get_ports().is_empty() {
            config.port(26257);
        }
        if let Some(user) = &flags.user {
            config.user(user);
        } else if config.get_user().is_none() {
            config.user(DEFAULT_USER);
        }
        if let Some(database) = &flags.database {
            config.dbname(database);
        } else if config.get_dbname().is_none() {
            config.dbname(DEFAULT_DATABASE);
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_ssl_mode() == SslMode::Require {
            bail!(
                "sslmode=require: meridian sql cannot connect with TLS yet, because the \
                 server's SQL listener does not speak TLS yet; use sslmode=disable"
            );
        }
        config
            .ssl_mode(SslMode::Disable)
            .application_name("meridian sql")
            .connect_timeout(Duration::from_secs(10));

        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => unreachable!("a host was set above"),
        };
        let port = config.get_ports()[0];
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let label = format!(
            "{}@{addr}/{}",
            config.get_user().unwrap_or(DEFAULT_USER),
            config.get_dbname().unwrap_or(DEFAULT_DATABASE)
        );
        let tls_note = flags.certs_dir.as_ref().map(|dir| {
            format!(
                "note: --certs-dir {} is not used: the SQL listener does not speak TLS yet, \
                 so this connection is plaintext",
                dir.display()
            )
        });
        Ok(Target {
            config,
            addr,
            label,
            tls_note,
        })
    }
}

/// `HOST:PORT`, `[V6]:PORT`, or a bare host (port 26257).
pub fn parse_host(text: &str) -> Result<(String, u16)> {
    let bad = || anyhow!("bad --host {text:?}: expected HOST:PORT");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else if text.matches(':').count() > 1 {
        (text, None) // a bare IPv6 address
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad())?,
        None => 26257,
    };
    Ok((host.to_string(), port))
}

/// An open connection.
pub struct Conn {
    pub client: Client,
    /// Why the connection ended, once it did.
    ended: Arc<Mutex<Option<String>>>,
}

impl Conn {
    pub async fn open(target: &Target) -> Result<Conn> {
        let (client, mut connection) = target
            .config
            .connect(NoTls)
            .await
            .map_err(|e| connect_error(target, e))?;
        let ended = Arc::new(Mutex::new(None));
        let slot = ended.clone();
        tokio::spawn(async move {
            let messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            futures_util::pin_mut!(messages);
            use futures_util::StreamExt;
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notice(notice)) => {
                        eprintln!("{}: {}", notice.severity(), notice.message());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        set_once(&slot, e.to_string());
                        return;
                    }
                }
            }
            set_once(&slot, "the server closed the connection".to_string());
        });
        Ok(Conn { client, ended })
    }

    /// Why the connection is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ended.or_else(|| self.client.is_closed().then(|| "connection closed".into()))
    }
}

fn connect_error(target: &Target, e: tokio_postgres::Error) -> anyhow::Error {
    if let Some(db) = e.as_db_error() {
        // Refused by the server (a bad user or database, say).
        return anyhow!(
            "the server at {} refused the connection: {}\nSQLSTATE: {}",
            target.addr,
            db.message(),
            db.code().code()
        );
    }
    let text = error_chain(&e);
    let mut message = format!(
        "cannot connect to the SQL listener at {}: {text}",
        target.addr
    );
    if text.contains("refused") {
        message.push_str(
            " (is a node running there? `meridian start` serves SQL on its --sql-listen \
             address, by default its --listen address on TCP)",
        );
    } else if text.contains("SSL") || text.contains("TLS") || text.contains("ssl") {
        message.push_str(" (the server seems to want TLS, which meridian sql does not speak yet)");
    }
    anyhow!(message)
}

/// An error and its causes, `: `-separated (tokio-postgres puts the
/// interesting part, such as "Connection refused", in the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Whether a statement's error means the connection is gone, as opposed
/// to an error the server answered with.
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none()
}

fn set_once(slot: &Mutex<Option<String>>, why: String) {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert(why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("127.0.0.1:5432").unwrap(),
            ("127.0.0.1".into(), 5432)
        );
        assert_eq!(
            parse_host("localhost").unwrap(),
            ("localhost".into(), 26257)
        );
        assert_eq!(parse_host("[::1]:7").unwrap(), ("::1".into(), 7));
        assert_eq!(parse_host("::1").unwrap(), ("::1".into(), 26257));
        assert!(parse_host("host:port").is_err());
        assert!(parse_host(":5").is_err());
    }

    #[test]
    fn defaults_and_url() {
        let t = Target::from_flags(&ConnFlags::default()).unwrap();
        assert_eq!(t.label, "root@127.0.0.1:26257/defaultdb");
        assert!(t.tls_note.is_none());
        let t = Target::from_flags(&ConnFlags {
            url: Some("postgres://alice@db.example:5433/bank".into()),
            certs_dir: Some("certs".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.label, "alice@db.example:5433/bank");
        assert!(t.tls_note.unwrap().contains("plaintext"));
        let t = Target::from_flags(&ConnFlags {
            url: Some("postgres://alice@[::1]:5433".into()),
            database: Some("other".into()),
            user: Some("bob".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.label, "bob@[::1]:5433/other");
        let e = Target::from_flags(&ConnFlags {
            url: Some("postgres://a@h/db?sslmode=require".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
    }
}
