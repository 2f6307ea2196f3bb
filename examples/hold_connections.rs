//! Opens C keep-alive connections, sends one request on each (at most K in
//! flight at a time), then holds them all open and idle until stdin closes;
//! a fixed population of idle connections for measuring memory per
//! connection (`benches/conn_memory.sh`).
//!
//!   hold_connections ADDR PATH C K [AUTHORIZATION]
//!
//! Prints `holding C` once every connection has had its answer.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

fn main() {
    let mut a = std::env::args().skip(1);
    let addr: SocketAddr = a.next().and_then(|s| s.parse().ok()).expect("ADDR");
    let path = a.next().expect("PATH");
    let c: usize = a.next().and_then(|s| s.parse().ok()).expect("C");
    let k: usize = a.next().and_then(|s| s.parse().ok()).expect("K");
    let auth = a.next();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(k.max(1)));
        let mut tasks = Vec::with_capacity(c);
        for _ in 0..c {
            let (path, auth, in_flight) = (path.clone(), auth.clone(), Arc::clone(&in_flight));
            tasks.push(tokio::spawn(async move {
                let permit = in_flight.acquire_owned().await.expect("semaphore");
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                let conn = tokio::spawn(conn);
                let mut req = http::Request::get(&path).header("host", "bench");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let resp = send
                    .send_request(req.body(Empty::<bytes::Bytes>::new()).expect("request"))
                    .await
                    .expect("response");
                assert!(resp.status().is_success(), "status {}", resp.status());
                resp.into_body().collect().await.expect("body");
                drop(permit);
                (send, conn)
            }));
        }
        let mut held = Vec::with_capacity(c);
        for t in tasks {
            held.push(t.await.expect("task"));
        }
        println!("holding {}", held.len());
        // Hold until stdin closes, then close every connection.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .expect("stdin");
        for (send, conn) in held {
            drop(send);
            conn.abort();
        }
    });
}
