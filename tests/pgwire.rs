//! The PostgreSQL wire protocol of real nodes (testkit's `NodeCluster`):
//! tokio-postgres in the simple and extended protocols, transaction status
//! in ReadyForQuery, errors with their SQLSTATE leaving the session usable,
//! empty queries, a node that is not a member yet (57P03), SQL through
//! every node of a cluster, and bytes no client should send (the node
//! keeps serving and nothing panics).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_testkit::NodeCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Long enough for a statement on a fresh cluster (first writes elect
/// leaders, create the catalog).
const STATEMENT: Duration = Duration::from_secs(60);

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Records panics on any thread or task (a connection task's panic would
/// otherwise be swallowed by tokio), so a test can assert there were none.
fn watch_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        default(info);
    }));
}

fn assert_no_panic() {
    assert!(
        !PANICKED.load(Ordering::SeqCst),
        "something panicked (see the output above)"
    );
}

async fn connect(addr: SocketAddr) -> Result<Client, tokio_postgres::Error> {
    let config = format!(
        "host={} port={} user=root application_name=pgwire-test",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STATEMENT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STATEMENT:?}"))
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_simple_and_extended_queries() {
    watch_panics();
    let cluster = NodeCluster::start(1).await.unwrap();
    let client = connect(cluster.sql_addr(0)).await.unwrap();

    let messages = within("SELECT 1", client.simple_query("SELECT 1"))
        .await
        .unwrap();
    assert_eq!(simple_rows(&messages), vec![vec![Some("1".to_string())]]);

    // Extended protocol: the parameter's type comes from the statement,
    // values travel in binary both ways.
    let rows = within(
        "SELECT $1::INT8 + 1",
        client.query("SELECT $1::INT8 + 1", &[&41i64]),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 42);

    // The same statement prepared once, run twice.
    let statement = within("prepare", client.prepare("SELECT $1::INT8 * 2"))
        .await
        .unwrap();
    assert_eq!(statement.params(), &[tokio_postgres::types::Type::INT8]);
    for n in [3i64, 5] {
        let row = within("query_one", client.query_one(&statement, &[&n]))
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), n * 2);
    }

    cluster.shutdown().await;
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_errors_keep_the_session() {
    watch_panics();
    let cluster = NodeCluster::start(1).await.unwrap();
    let client = connect(cluster.sql_addr(0)).await.unwrap();

    // Simple protocol: a syntax error, with its SQLSTATE.
    let e = within("a syntax error", client.simple_query("SELEC 1"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), SqlState::SYNTAX_ERROR.code(), "{e:?}");
    let messages = within("SELECT 2", client.simple_query("SELECT 2"))
        .await
        .unwrap();
    assert_eq!(simple_rows(&messages), vec![vec![Some("2".to_string())]]);

    // Extended protocol: an unknown table fails at Parse.
    let e = within(
        "an unknown table",
        client.query("SELECT * FROM no_such_table", &[]),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), SqlState::UNDEFINED_TABLE.code(), "{e:?}");
    // A text parameter that does not cast to INT8 fails at Execute.
    let statement = within(
        "prepare_typed",
        client.prepare_typed("SELECT $1::INT8", &[tokio_postgres::types::Type::TEXT]),
    )
    .await
    .unwrap();
    let e = within(
        "a bad parameter",
        client.query(&statement, &[&"not a number"]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&e),
        SqlState::INVALID_TEXT_REPRESENTATION.code(),
        "{e:?}"
    );
    let rows = within("SELECT $1::INT8", client.query("SELECT $1::INT8", &[&7i64]))
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 7);

    cluster.shutdown().await;
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_transaction_status_and_empty_queries() {
    watch_panics();
    let cluster = NodeCluster::start(1).await.unwrap();
    let addr = cluster.sql_addr(0);

    // ReadyForQuery's status byte, read off the wire.
    let mut raw = Raw::connect(addr).await;
    let startup = raw.startup(&[("user", "root")]).await;
    assert_eq!(startup.status, Some(b'I'), "{:?}", startup.types());
    assert!(startup.types().contains(&b'S'), "ParameterStatus is sent");
    assert!(startup.types().contains(&b'K'), "BackendKeyData is sent");
    let reply = raw.query("BEGIN").await;
    assert_eq!(reply.status, Some(b'T'), "{:?}", reply.types());
    let reply = raw.query("SELECT 1").await;
    assert_eq!(reply.types(), vec![b'T', b'D', b'C', b'Z']);
    assert_eq!(reply.status, Some(b'T'));
    let reply = raw.query("SELEC 1").await;
    assert_eq!(reply.error_code().as_deref(), Some("42601"));
    assert_eq!(
        reply.status,
        Some(b'E'),
        "an error fails the open transaction"
    );
    let reply = raw.query("SELECT 1").await;
    assert_eq!(reply.error_code().as_deref(), Some("25P02"));
    assert_eq!(reply.status, Some(b'E'));
    let reply = raw.query("ROLLBACK").await;
    assert_eq!(reply.status, Some(b'I'), "{:?}", reply.error_code());
    let reply = raw.query("BEGIN").await;
    assert_eq!(reply.status, Some(b'T'));
    let reply = raw.query("COMMIT").await;
    assert_eq!(reply.status, Some(b'I'), "{:?}", reply.error_code());
    // An error outside a transaction block leaves the session idle.
    let reply = raw.query("SELEC 1").await;
    assert_eq!(reply.status, Some(b'I'));

    // Empty statements answer EmptyQueryResponse ('I').
    for empty in ["", " ", ";"] {
        let reply = raw.query(empty).await;
        assert_eq!(reply.types(), vec![b'I', b'Z'], "for {empty:?}");
    }

    // The same through tokio-postgres, in both protocols.
    let client = connect(addr).await.unwrap();
    let messages = within("empty", client.simple_query("")).await.unwrap();
    assert!(simple_rows(&messages).is_empty());
    assert_eq!(within("empty", client.execute("", &[])).await.unwrap(), 0);
    within("BEGIN", client.batch_execute("BEGIN"))
        .await
        .unwrap();
    let rows = within(
        "SELECT in a block",
        client.query("SELECT $1::INT8", &[&1i64]),
    )
    .await
    .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    within("COMMIT", client.batch_execute("COMMIT"))
        .await
        .unwrap();

    cluster.shutdown().await;
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_tables_through_every_node() {
    watch_panics();
    let cluster = NodeCluster::start(3).await.unwrap();
    let mut clients = Vec::new();
    for addr in cluster.sql_addrs() {
        clients.push(connect(addr).await.unwrap());
    }
    within(
        "CREATE TABLE",
        clients[0].batch_execute("CREATE TABLE kv (k INT8 PRIMARY KEY, v TEXT)"),
    )
    .await
    .unwrap();
    let inserted = within(
        "INSERT",
        clients[1].execute(
            "INSERT INTO kv (k, v) VALUES ($1, $2), ($3, $4)",
            &[&1i64, &"one", &2i64, &"two"],
        ),
    )
    .await
    .unwrap();
    assert_eq!(inserted, 2);
    within(
        "INSERT (simple)",
        clients[2].batch_execute("INSERT INTO kv VALUES (3, 'three')"),
    )
    .await
    .unwrap();
    for client in &clients {
        let rows = within(
            "SELECT",
            client.query("SELECT k, v FROM kv WHERE k >= $1 ORDER BY k", &[&2i64]),
        )
        .await
        .unwrap();
        let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, vec![(2, "two".to_string()), (3, "three".to_string())]);
    }
    let messages = within(
        "SELECT (simple)",
        clients[2].simple_query("SELECT v FROM kv WHERE k = 1"),
    )
    .await
    .unwrap();
    assert_eq!(simple_rows(&messages), vec![vec![Some("one".to_string())]]);
    let e = within(
        "a duplicate key",
        clients[0].execute("INSERT INTO kv VALUES (1, 'again')", &[]),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), SqlState::UNIQUE_VIOLATION.code(), "{e:?}");

    cluster.shutdown().await;
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_refuses_connections_until_the_node_is_a_member() {
    watch_panics();
    let cluster = NodeCluster::start_uninitialized(1).await.unwrap();
    let e = connect(cluster.sql_addr(0)).await.unwrap_err();
    assert_eq!(code(&e), SqlState::CANNOT_CONNECT_NOW.code(), "{e:?}");

    cluster.init().await.unwrap();
    let client = connect(cluster.sql_addr(0)).await.unwrap();
    let messages = within("SELECT 1", client.simple_query("SELECT 1"))
        .await
        .unwrap();
    assert_eq!(simple_rows(&messages).len(), 1);

    cluster.shutdown().await;
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_survives_malformed_messages() {
    watch_panics();
    let cluster = NodeCluster::start(1).await.unwrap();
    let addr = cluster.sql_addr(0);

    // Before startup: garbage, an absurd length, lengths below the
    // header's own size, a truncated packet.
    let openings: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        [
            &0x7fff_ffffu32.to_be_bytes()[..],
            &196_608u32.to_be_bytes()[..],
            b"user",
        ]
        .concat(),
        [&0xffff_fff0u32.to_be_bytes()[..], &[0u8; 12][..]].concat(),
        0u32.to_be_bytes().to_vec(),
        [&3u32.to_be_bytes()[..], &[1u8, 2, 3, 4][..]].concat(),
        [&8u32.to_be_bytes()[..], &196_608u32.to_be_bytes()[..]].concat(),
        [
            &40u32.to_be_bytes()[..],
            &196_608u32.to_be_bytes()[..],
            b"user\0ro",
        ]
        .concat(),
        [
            &16u32.to_be_bytes()[..],
            &0x0009_0000u32.to_be_bytes()[..],
            &[0u8; 8][..],
        ]
        .concat(),
        (0..=255u8).cycle().take(4096).collect(),
    ];
    for bytes in &openings {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(bytes).await;
        drain(&mut stream).await;
    }

    // After startup: bad lengths and unknown message types.
    let after_startup: Vec<Vec<u8>> = vec![
        [&b"Q"[..], &2u32.to_be_bytes()[..]].concat(),
        [&b"Q"[..], &0x7fff_fff0u32.to_be_bytes()[..], b"SELECT 1"].concat(),
        [&b"z"[..], &4u32.to_be_bytes()[..]].concat(),
        [&b"Q"[..], &9u32.to_be_bytes()[..], b"SEL\xff\0"].concat(),
    ];
    for bytes in &after_startup {
        let mut raw = Raw::connect(addr).await;
        assert_eq!(raw.startup(&[("user", "root")]).await.status, Some(b'I'));
        let _ = raw.stream.write_all(bytes).await;
        drain(&mut raw.stream).await;
    }

    // Extended protocol messages that do not fit together: a Bind with
    // more result format codes than columns, an Execute of a portal that
    // does not exist, a Bind with too few parameters. Each answers an
    // error, and the connection carries on after Sync.
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.startup(&[("user", "root")]).await.status, Some(b'I'));
    raw.parse("", "SELECT 1").await;
    raw.bind("", "", &[], &[0, 1, 0]).await;
    raw.execute("").await;
    raw.sync().await;
    let reply = raw.until_ready().await;
    assert_eq!(
        reply.error_code().as_deref(),
        Some("08P01"),
        "{:?}",
        reply.types()
    );
    raw.execute("no_such_portal").await;
    raw.sync().await;
    let reply = raw.until_ready().await;
    assert!(reply.error_code().is_some(), "{:?}", reply.types());
    raw.parse("p", "SELECT $1::INT8").await;
    raw.bind("", "p", &[], &[]).await;
    raw.execute("").await;
    raw.sync().await;
    let reply = raw.until_ready().await;
    assert_eq!(
        reply.error_code().as_deref(),
        Some("08P01"),
        "{:?}",
        reply.types()
    );
    let reply = raw.query("SELECT 1").await;
    assert_eq!(reply.types(), vec![b'T', b'D', b'C', b'Z']);

    assert_no_panic();

    // A Bind cut short after its names: pgwire 0.42.1's decoder reads past
    // the end of the body and panics (bytes: "advance out of bounds"). The
    // panic stays in that connection's task (the listener logs it); the
    // node must go on serving.
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.startup(&[("user", "root")]).await.status, Some(b'I'));
    let _ = raw
        .stream
        .write_all(&[&b"B"[..], &6u32.to_be_bytes()[..], b"\0\0"].concat())
        .await;
    drain(&mut raw.stream).await;

    // The node still serves new connections.
    let client = connect(addr).await.unwrap();
    let messages = within("SELECT 1", client.simple_query("SELECT 1"))
        .await
        .unwrap();
    assert_eq!(simple_rows(&messages).len(), 1);
    // A cancel request for this connection, while it is idle, changes
    // nothing.
    client.cancel_token().cancel_query(NoTls).await.unwrap();
    let messages = within("SELECT 1", client.simple_query("SELECT 1"))
        .await
        .unwrap();
    assert_eq!(simple_rows(&messages).len(), 1);

    cluster.shutdown().await;
}

/// Reads what the server answers until it closes the connection or stays
/// quiet for a moment.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
    }
}

/// A client that writes protocol messages by hand.
struct Raw {
    stream: TcpStream,
}

/// The messages of one exchange, up to ReadyForQuery (or the end of the
/// stream).
struct Reply {
    messages: Vec<(u8, Vec<u8>)>,
    /// ReadyForQuery's transaction status, if it came.
    status: Option<u8>,
}

impl Reply {
    fn types(&self) -> Vec<u8> {
        self.messages.iter().map(|(t, _)| *t).collect()
    }

    /// The SQLSTATE of the first ErrorResponse.
    fn error_code(&self) -> Option<String> {
        let (_, body) = self.messages.iter().find(|(t, _)| *t == b'E')?;
        let mut fields = body.split(|&b| b == 0);
        fields.find_map(|f| {
            f.strip_prefix(b"C")
                .map(|c| String::from_utf8_lossy(c).to_string())
        })
    }
}

fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), &[0]].concat()
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
        }
    }

    async fn startup(&mut self, params: &[(&str, &str)]) -> Reply {
        let mut body = 196_608u32.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend(cstr(k));
            body.extend(cstr(v));
        }
        body.push(0);
        let len = (body.len() + 4) as u32;
        self.stream.write_all(&len.to_be_bytes()).await.unwrap();
        self.stream.write_all(&body).await.unwrap();
        self.until_ready().await
    }

    async fn send(&mut self, ty: u8, body: &[u8]) {
        let mut message = vec![ty];
        message.extend(((body.len() + 4) as u32).to_be_bytes());
        message.extend(body);
        self.stream.write_all(&message).await.unwrap();
    }

    async fn query(&mut self, sql: &str) -> Reply {
        self.send(b'Q', &cstr(sql)).await;
        self.until_ready().await
    }

    async fn parse(&mut self, name: &str, sql: &str) {
        let body = [cstr(name), cstr(sql), 0u16.to_be_bytes().to_vec()].concat();
        self.send(b'P', &body).await;
    }

    async fn bind(
        &mut self,
        portal: &str,
        statement: &str,
        params: &[&[u8]],
        result_formats: &[i16],
    ) {
        let mut body = [cstr(portal), cstr(statement)].concat();
        body.extend(0u16.to_be_bytes()); // parameter formats: all text
        body.extend((params.len() as u16).to_be_bytes());
        for p in params {
            body.extend((p.len() as i32).to_be_bytes());
            body.extend(*p);
        }
        body.extend((result_formats.len() as u16).to_be_bytes());
        for f in result_formats {
            body.extend(f.to_be_bytes());
        }
        self.send(b'B', &body).await;
    }

    async fn execute(&mut self, portal: &str) {
        let body = [cstr(portal), 0u32.to_be_bytes().to_vec()].concat();
        self.send(b'E', &body).await;
    }

    async fn sync(&mut self) {
        self.send(b'S', &[]).await;
    }

    async fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 5];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len.checked_sub(4)?];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((header[0], body))
    }

    async fn until_ready(&mut self) -> Reply {
        let mut messages = Vec::new();
        loop {
            let message = tokio::time::timeout(STATEMENT, self.read_message())
                .await
                .expect("the server answers");
            match message {
                None => {
                    return Reply {
                        messages,
                        status: None,
                    }
                }
                Some((b'Z', body)) => {
                    let status = body.first().copied();
                    messages.push((b'Z', body));
                    return Reply { messages, status };
                }
                Some(message) => messages.push(message),
            }
        }
    }
}
