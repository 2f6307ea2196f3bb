//! Request smuggling over raw TCP (README, "Requests and responses"): a request with both
//! `Content-Length` and `Transfer-Encoding`, differing `Content-Length`
//! values, obfuscated `Transfer-Encoding`, and so on, is rejected with 400 or
//! framed by `Transfer-Encoding` alone — and a request hidden in a body never
//! reaches the backend as a request of its own.
//!
//! The backend here is a raw TCP server that parses what the gateway sends
//! strictly (CRLF lines, exactly one of `Content-Length` or
//! `Transfer-Encoding: chunked`), counts requests per connection, and records
//! every framing it finds ambiguous.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const ROUTES: &str = r#"
default = "deny"

[[route]]
name = "public"
path = "/public/{*rest}"
public = true
"#;

/// The request hidden in bodies. Its path is not public: if the gateway
/// ever parsed it as a request it would answer 403 itself.
const SMUGGLED: &str = "GET /admin/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// A request as the raw backend parsed it.
#[derive(Clone, Debug)]
struct Seen {
    conn: usize,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<Seen>,
    /// Ambiguous or broken framing sent by the gateway.
    anomalies: Vec<String>,
    /// Connections that closed in the middle of a request (an aborted body).
    aborted: usize,
    connections: usize,
}

/// A raw HTTP/1.1 backend that answers `200 ok` to every request it parses.
#[derive(Clone)]
struct RawBackend {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl RawBackend {
    async fn start() -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let l = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let conn = {
                    let mut g = l.lock().unwrap();
                    g.connections += 1;
                    g.connections
                };
                tokio::spawn(serve(conn, stream, Arc::clone(&l)));
            }
        });
        RawBackend { addr, log }
    }

    fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().requests.clone()
    }

    fn anomalies(&self) -> Vec<String> {
        self.log.lock().unwrap().anomalies.clone()
    }

    /// Requests per connection, in connection order.
    fn per_connection(&self) -> Vec<usize> {
        let g = self.log.lock().unwrap();
        (1..=g.connections)
            .map(|c| g.requests.iter().filter(|r| r.conn == c).count())
            .collect()
    }
}

/// Buffered reads with a deadline.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more; `false` when the peer closed or went quiet for 10 s.
    async fn more(&mut self) -> bool {
        let mut tmp = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut tmp)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            _ => false,
        }
    }

    /// Takes bytes up to and including the first CRLF; the line without it.
    async fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if self.buf.len() > 1 << 20 || !self.more().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.more().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

enum Parsed {
    Request(Seen),
    Closed,
    Aborted,
}

async fn serve(conn: usize, stream: TcpStream, log: Arc<Mutex<Log>>) {
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        let mut anomalies = Vec::new();
        let parsed = parse_one(conn, &mut c, &mut anomalies).await;
        {
            let mut g = log.lock().unwrap();
            g.anomalies.extend(anomalies);
            match parsed {
                Parsed::Request(seen) => g.requests.push(seen),
                Parsed::Closed => return,
                Parsed::Aborted => {
                    g.aborted += 1;
                    return;
                }
            }
        }
        if c.stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
            )
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Parses one request strictly; framing problems go to `anomalies`.
async fn parse_one(conn: usize, c: &mut Conn, anomalies: &mut Vec<String>) -> Parsed {
    let Some(request_line) = c.line().await else {
        return if c.buf.is_empty() {
            Parsed::Closed
        } else {
            Parsed::Aborted
        };
    };
    let mut lines = vec![request_line];
    loop {
        match c.line().await {
            None => return Parsed::Aborted,
            Some(l) if l.is_empty() => break,
            Some(l) => lines.push(l),
        }
    }
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    for l in &text {
        if l.contains('\n') || l.contains('\r') {
            anomalies.push(format!("conn {conn}: bare CR/LF in {l:?}"));
        }
    }
    let mut parts = text[0].split(' ');
    let (_method, target, version) = (parts.next(), parts.next(), parts.next());
    if version != Some("HTTP/1.1") || parts.next().is_some() {
        anomalies.push(format!("conn {conn}: odd request line {:?}", text[0]));
    }
    let mut headers = Vec::new();
    for l in &text[1..] {
        if l.starts_with(' ') || l.starts_with('\t') {
            anomalies.push(format!("conn {conn}: obs-fold line {l:?}"));
            continue;
        }
        match l.split_once(':') {
            Some((n, v)) if !n.is_empty() && !n.ends_with(' ') => {
                headers.push((n.to_string(), v.trim().to_string()))
            }
            _ => anomalies.push(format!("conn {conn}: bad header line {l:?}")),
        }
    }
    let seen_header = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let cl = seen_header("content-length");
    let te = seen_header("transfer-encoding");
    if !cl.is_empty() && !te.is_empty() {
        anomalies.push(format!(
            "conn {conn}: both Content-Length {cl:?} and Transfer-Encoding {te:?}"
        ));
    }
    if cl.len() > 1 {
        anomalies.push(format!("conn {conn}: several Content-Length {cl:?}"));
    }
    if te.len() > 1
        || te
            .first()
            .is_some_and(|t| !t.eq_ignore_ascii_case("chunked"))
    {
        anomalies.push(format!("conn {conn}: Transfer-Encoding {te:?}"));
    }
    let mut body = Vec::new();
    if te.iter().any(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let Some(size_line) = c.line().await else {
                return Parsed::Aborted;
            };
            let size_text = String::from_utf8_lossy(&size_line).into_owned();
            let Ok(size) = usize::from_str_radix(size_text.trim(), 16) else {
                anomalies.push(format!("conn {conn}: chunk size line {size_text:?}"));
                return Parsed::Aborted;
            };
            if size == 0 {
                loop {
                    match c.line().await {
                        None => return Parsed::Aborted,
                        Some(l) if l.is_empty() => break,
                        Some(_) => {}
                    }
                }
                break;
            }
            let Some(data) = c.take(size).await else {
                return Parsed::Aborted;
            };
            body.extend_from_slice(&data);
            match c.take(2).await {
                Some(crlf) if crlf == b"\r\n" => {}
                Some(other) => {
                    anomalies.push(format!(
                        "conn {conn}: chunk not followed by CRLF: {other:?}"
                    ));
                    return Parsed::Aborted;
                }
                None => return Parsed::Aborted,
            }
        }
    } else if let Some(len) = cl.first() {
        let Ok(n) = len.parse::<usize>() else {
            anomalies.push(format!("conn {conn}: Content-Length {len:?}"));
            return Parsed::Aborted;
        };
        match c.take(n).await {
            Some(data) => body = data,
            None => return Parsed::Aborted,
        }
    }
    Parsed::Request(Seen {
        conn,
        target: target.unwrap_or("").to_string(),
        headers,
        body,
    })
}

/// Writes `bytes` on a new connection; reads until the peer closes, stays
/// quiet for `idle`, or 5 s pass.
async fn exchange(addr: SocketAddr, bytes: &[u8], idle: Duration) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match tokio::time::timeout(idle, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Status codes of the responses in `text`, in order (framed by their
/// `Content-Length`, or chunked).
fn statuses(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(r) = rest.strip_prefix("HTTP/1.1 ") {
        let Some(code) = r.get(..3).and_then(|c| c.parse().ok()) else {
            break;
        };
        out.push(code);
        let Some(end) = rest.find("\r\n\r\n") else {
            break;
        };
        let head = rest[..end].to_ascii_lowercase();
        let body = &rest[end + 4..];
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        rest = match len {
            Some(n) => body.get(n..).unwrap_or(""),
            None if head.contains("transfer-encoding: chunked") => {
                body.find("0\r\n\r\n").map_or("", |i| &body[i + 5..])
            }
            None => "",
        };
    }
    out
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// What the gateway must do with a case.
#[derive(Debug)]
enum Expect {
    /// Answer 400 itself; the backend sees nothing.
    Reject,
    /// Answer 400, or forward exactly one request whose body is this
    /// (framed by `Transfer-Encoding` alone).
    RejectOrTe(&'static str),
    /// Forward exactly one request with this body, and answer only it.
    Forward(&'static str),
    /// Forward the first request (with this body) and refuse the pipelined
    /// forbidden one itself: answers 200 then 403.
    Pipelined(&'static str),
}

struct Case {
    name: &'static str,
    bytes: String,
    expect: Expect,
}

fn head(extra: &str) -> String {
    format!("POST /public/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
}

fn cases() -> Vec<Case> {
    let hidden = format!("{}0\r\n\r\n", chunk(SMUGGLED));
    let after_last = format!("0\r\n\r\n{SMUGGLED}");
    let case = |name, bytes: String, expect| Case {
        name,
        bytes,
        expect,
    };
    vec![
        case(
            "CL then TE: a CL reader would take 4 bytes and see the chunk as a request",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n")
            ),
            Expect::RejectOrTe(SMUGGLED),
        ),
        case(
            "TE then CL: same, header order swapped",
            format!(
                "{}{hidden}",
                head("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n")
            ),
            Expect::RejectOrTe(SMUGGLED),
        ),
        case(
            "CL then TE: a request after the last chunk, inside Content-Length",
            format!(
                "{}{after_last}",
                head(&format!(
                    "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    after_last.len()
                ))
            ),
            Expect::RejectOrTe(""),
        ),
        case(
            "TE then CL: a request after the last chunk, inside Content-Length",
            format!(
                "{}{after_last}",
                head(&format!(
                    "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                    after_last.len()
                ))
            ),
            Expect::RejectOrTe(""),
        ),
        case(
            "duplicate differing Content-Length",
            format!(
                "{}hello{SMUGGLED}",
                head(&format!(
                    "Content-Length: 5\r\nContent-Length: {}\r\n",
                    5 + SMUGGLED.len()
                ))
            ),
            Expect::Reject,
        ),
        case(
            "Content-Length as a list of differing values",
            format!(
                "{}hello{SMUGGLED}",
                head(&format!("Content-Length: 5, {}\r\n", 5 + SMUGGLED.len()))
            ),
            Expect::Reject,
        ),
        case(
            "Transfer-Encoding: chunked plus Transfer-Encoding: identity",
            format!(
                "{}{hidden}",
                head(
                    "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n"
                )
            ),
            Expect::Reject,
        ),
        case(
            "Transfer-Encoding: chunked, identity",
            format!(
                "{}{hidden}",
                head("Transfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "Transfer-Encoding: identity plus Transfer-Encoding: chunked (chunked is final)",
            format!(
                "{}{hidden}",
                head(
                    "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
                )
            ),
            Expect::RejectOrTe(SMUGGLED),
        ),
        case(
            "obs-fold continuation of Transfer-Encoding",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding: identity\r\n chunked\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "obs-fold (tab) of an empty Transfer-Encoding",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding:\r\n\tchunked\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "space before the colon of Transfer-Encoding",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding : chunked\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "bare-LF line endings in the head, CL and TE",
            format!(
                "POST /public/upload HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 4\nTransfer-Encoding: chunked\n\n{hidden}"
            ),
            Expect::RejectOrTe(SMUGGLED),
        ),
        case(
            "bare LF ending the Transfer-Encoding line only",
            format!(
                "POST /public/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\n\r\n{hidden}"
            ),
            Expect::RejectOrTe(SMUGGLED),
        ),
        case(
            "Transfer-Encoding: xchunked",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "Transfer-Encoding: \"chunked\" (quoted)",
            format!(
                "{}{hidden}",
                head("Content-Length: 4\r\nTransfer-Encoding: \"chunked\"\r\n")
            ),
            Expect::Reject,
        ),
        case(
            "Content-Length with a leading +",
            format!("{}hello{SMUGGLED}", head("Content-Length: +5\r\n")),
            Expect::Reject,
        ),
        case(
            "negative Content-Length",
            format!("{}hello{SMUGGLED}", head("Content-Length: -5\r\n")),
            Expect::Reject,
        ),
        case(
            "hexadecimal Content-Length",
            format!("{}hello{SMUGGLED}", head("Content-Length: 0x5\r\n")),
            Expect::Reject,
        ),
        case(
            "Transfer-Encoding with HTTP/1.0",
            format!(
                "POST /public/upload HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n{hidden}"
            ),
            Expect::Reject,
        ),
        case(
            "a request hidden in a chunk",
            format!("{}{hidden}", head("Transfer-Encoding: chunked\r\n")),
            Expect::Forward(SMUGGLED),
        ),
        case(
            "a request hidden in a chunk with extensions",
            format!(
                "{}{:x};ext=\"x\"\r\n{SMUGGLED}\r\n0;end\r\n\r\n",
                head("Transfer-Encoding: chunked\r\n"),
                SMUGGLED.len()
            ),
            Expect::Forward(SMUGGLED),
        ),
        case(
            "a request hidden in a Content-Length body",
            format!(
                "{}{SMUGGLED}",
                head(&format!("Content-Length: {}\r\n", SMUGGLED.len()))
            ),
            Expect::Forward(SMUGGLED),
        ),
        case(
            "pipelined: a forbidden request after a public one",
            format!("{}hello{SMUGGLED}", head("Content-Length: 5\r\n")),
            Expect::Pipelined("hello"),
        ),
        case(
            "pipelined after a body-less GET",
            format!("GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n{SMUGGLED}"),
            Expect::Pipelined(""),
        ),
    ]
}

#[tokio::test]
async fn no_request_is_smuggled_to_the_backend() {
    let backend = RawBackend::start().await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();

    // Control: the raw backend and the public route work.
    let r = get(gw.addr, "/public/control", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_ref(), b"ok");
    assert_eq!(backend.requests().len(), 1);

    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let before = backend.requests().len();
        let answer = exchange(gw.addr, case.bytes.as_bytes(), Duration::from_millis(500)).await;
        // Give a late (smuggled) request time to show up.
        let mut got = Vec::new();
        let settled = Instant::now() + Duration::from_millis(200);
        while Instant::now() < settled {
            got = backend.requests().split_off(before);
            if got.len() > 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = statuses(&answer);
        let first = status.first().copied();
        let mut problems = Vec::new();
        if got.len() > 1 {
            problems.push(format!("backend received {} requests", got.len()));
        }
        if got.iter().any(|r| r.target.contains("smuggled")) {
            problems.push("the hidden request reached the backend".to_string());
        }
        if got
            .iter()
            .any(|r| r.target != "/public/upload" && r.target != "/public/x")
        {
            problems.push("the backend received an unexpected target".to_string());
        }
        for r in &got {
            let cl = r.header("content-length");
            if !r.header("transfer-encoding").is_empty() && !cl.is_empty() {
                problems.push("forwarded with both Content-Length and Transfer-Encoding".into());
            }
            if cl
                .first()
                .is_some_and(|v| v.parse::<usize>().ok() != Some(r.body.len()))
            {
                problems.push(format!(
                    "Content-Length {cl:?} but body of {}",
                    r.body.len()
                ));
            }
        }
        let body = got
            .first()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned());
        match &case.expect {
            Expect::Reject => {
                if first != Some(400) || !got.is_empty() {
                    problems.push("expected 400 and nothing forwarded".into());
                }
            }
            Expect::RejectOrTe(want) => {
                let rejected = first == Some(400) && got.is_empty();
                let te_framed = first == Some(200) && body.as_deref() == Some(*want);
                if !rejected && !te_framed {
                    problems.push(format!(
                        "expected 400, or 200 with the TE-decoded body {want:?}"
                    ));
                }
            }
            Expect::Forward(want) => {
                if status != [200] || body.as_deref() != Some(*want) {
                    problems.push(format!("expected one 200 with body {want:?} forwarded"));
                }
            }
            Expect::Pipelined(want) => {
                if status != [200, 403] || body.as_deref() != Some(*want) {
                    problems.push(format!(
                        "expected 200 (body {want:?} forwarded), then 403 for the pipelined request"
                    ));
                }
            }
        }
        println!(
            "smuggling: {:<75} -> statuses {status:?}, backend bodies {:?}",
            case.name,
            got.iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        );
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({:?}): {}\n      statuses {status:?}, backend received {:?}",
                case.name,
                case.expect,
                problems.join("; "),
                got.iter()
                    .map(|r| (
                        r.target.clone(),
                        String::from_utf8_lossy(&r.body).into_owned()
                    ))
                    .collect::<Vec<_>>()
            ));
        }
    }
    let anomalies = backend.anomalies();
    println!(
        "smuggling: requests per backend connection {:?}, aborted {}",
        backend.per_connection(),
        backend.log.lock().unwrap().aborted
    );
    assert!(
        anomalies.is_empty(),
        "the gateway sent ambiguous framing upstream: {anomalies:#?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} smuggling cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    assert!(
        backend
            .requests()
            .iter()
            .all(|r| !r.target.contains("smuggled")),
        "the hidden request never reaches the backend"
    );
}

/// A chunked body the client frames wrongly is the client's error: 400, not
/// the 502 that blames the upstream, and the backend never receives a
/// complete request.
#[tokio::test]
async fn malformed_chunked_bodies_are_400() {
    let backend = RawBackend::start().await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();
    let head = head("Transfer-Encoding: chunked\r\n");
    let n = SMUGGLED.len();
    let cases = [
        (
            "bare-LF chunk framing",
            format!("{head}{n:x}\n{SMUGGLED}\n0\n\n"),
        ),
        (
            "chunk size overflow",
            format!("{head}fffffffffffffffffff\r\n{SMUGGLED}\r\n0\r\n\r\n"),
        ),
        (
            "chunk size not hex",
            format!("{head}zz\r\n{SMUGGLED}\r\n0\r\n\r\n"),
        ),
        (
            "chunk longer than its size",
            format!("{head}4\r\n{SMUGGLED}\r\n0\r\n\r\n"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, bytes) in &cases {
        let answer = exchange(gw.addr, bytes.as_bytes(), Duration::from_millis(500)).await;
        let status = statuses(&answer);
        println!("malformed chunked body: {name:<30} -> statuses {status:?}");
        if status.first() != Some(&400) || !answer.contains("\"bad_request\"") {
            failures.push(format!("{name}: statuses {status:?}"));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        backend.requests().is_empty(),
        "no complete request reached the backend: {:?}",
        backend.requests()
    );
    assert!(backend.anomalies().is_empty(), "{:?}", backend.anomalies());
    assert!(
        failures.is_empty(),
        "malformed chunked bodies must be answered 400:\n  {}",
        failures.join("\n  ")
    );
}
