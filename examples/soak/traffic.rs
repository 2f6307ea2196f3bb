//! Sending the traffic (the mix in `mix.rs`: allowed, denied,
//! unauthenticated, unmatched, public, spoofing, large-body and hostile
//! requests), paced to a rate, over keep-alive connections, fresh
//! connections, and raw TCP for the hostile targets a client library would
//! refuse to send.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::mix::{KIB, Payload, Planned, Rng, hostile_targets, plan};
use crate::stats::{Outcome, Stats};

type Body = BoxBody<Bytes, Infallible>;

fn body(payload: Payload) -> Body {
    match payload {
        Payload::None => Full::new(Bytes::new()).boxed(),
        Payload::Sized(n) => Full::new(Bytes::from(vec![b'x'; n])).boxed(),
        Payload::Chunked(n) => {
            let chunk = Bytes::from(vec![b'y'; 16 * KIB]);
            let frames = (0..n / (16 * KIB)).map(move |_| Ok(Frame::data(chunk.clone())));
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        }
    }
}

/// Sends one planned request on `conn` (opening one when there is none);
/// the answer's status, or `None` when the exchange failed. `stage` says
/// how far it got (for an exchange that never ends).
async fn send(
    gateway: SocketAddr,
    conn: &mut Option<SendRequest<Body>>,
    req: &Planned,
    id: &str,
    stage: &mut &'static str,
) -> Option<u16> {
    if req.raw {
        *stage = "raw exchange";
        return send_raw(gateway, req, id).await;
    }
    let mut reused = true;
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        reused = false;
        *stage = "connect";
        let stream = TcpStream::connect(gateway).await.ok()?;
        let _ = stream.set_nodelay(true);
        *stage = "handshake";
        let (s, c) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(c);
        *conn = Some(s);
    }
    let s = conn.as_mut()?;
    let mut b = http::Request::builder()
        .method(req.method)
        .uri(std::str::from_utf8(&req.target).ok()?)
        .header("host", "soak.test")
        .header("x-request-id", id);
    if let Some(c) = &req.caller {
        b = b.header("authorization", format!("Bearer {c}"));
    }
    for (k, v) in &req.headers {
        b = b.header(*k, *v);
    }
    if let Payload::Sized(n) | Payload::Chunked(n) = req.payload {
        b = b.header("x-soak-body-len", n.to_string());
    }
    let r = b.body(body(req.payload)).ok()?;
    let result = async {
        *stage = if reused {
            "ready (reused connection)"
        } else {
            "ready (new connection)"
        };
        s.ready().await.ok()?;
        *stage = if reused {
            "response head (reused connection)"
        } else {
            "response head (new connection)"
        };
        let resp = s.send_request(r).await.ok()?;
        let status = resp.status().as_u16();
        *stage = "response body";
        resp.into_body().collect().await.ok()?;
        Some(status)
    }
    .await;
    if result.is_none() {
        *conn = None;
    }
    result
}

/// A hostile target, byte for byte, on a connection of its own.
async fn send_raw(gateway: SocketAddr, req: &Planned, id: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(gateway).await.ok()?;
    let mut bytes = format!("{} ", req.method).into_bytes();
    bytes.extend_from_slice(&req.target);
    bytes.extend_from_slice(b" HTTP/1.1\r\nHost: soak.test\r\nConnection: close\r\n");
    bytes.extend_from_slice(format!("X-Request-Id: {id}\r\n").as_bytes());
    if let Some(c) = &req.caller {
        bytes.extend_from_slice(format!("Authorization: Bearer {c}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    stream.write_all(&bytes).await.ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let line = answer.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// One worker: sends planned requests at `per_second` until `until`;
/// `fresh` workers open a connection for every request.
pub async fn worker(
    gateway: SocketAddr,
    stats: Arc<Stats>,
    seed: u64,
    per_second: f64,
    fresh: bool,
    until: Instant,
) {
    let hostile = hostile_targets();
    let mut rng = Rng::new(seed);
    let mut conn = None;
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let mut next = Instant::now();
    let mut seq = 0u64;
    // The previous exchange on the kept-alive connection, for the report.
    let mut previous = String::new();
    while Instant::now() < until {
        let req = plan(&mut rng, &hostile);
        seq += 1;
        let id = format!("soak-{seed:x}-{seq}");
        let mut stage = "";
        let started = Instant::now();
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            send(gateway, &mut conn, &req, &id, &mut stage),
        )
        .await
        .ok()
        .flatten();
        if fresh || status.is_none() {
            conn = None;
        }
        let before = std::mem::replace(
            &mut previous,
            match (&conn, req.raw) {
                (Some(_), false) => format!(
                    "{} {} {} answered {}",
                    req.kind,
                    req.method,
                    String::from_utf8_lossy(&req.target),
                    status.map_or("nothing".into(), |s| s.to_string())
                ),
                _ => String::new(),
            },
        );
        stats.record(Outcome {
            kind: req.kind,
            expect: req.expect,
            status,
            latency: started.elapsed(),
            target: String::from_utf8_lossy(&req.target).into_owned(),
            method: req.method,
            id,
            stage,
            previous: before,
        });
        next += interval;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        } else {
            next = now;
        }
    }
}
