//! Sends exactly N requests over C keep-alive connections and exits; a
//! steady load for instruction counting (`valgrind --tool=callgrind`).
//!
//!   fixed_load URL_ADDR PATH N C [AUTHORIZATION]

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

fn main() {
    let mut a = std::env::args().skip(1);
    let addr: SocketAddr = a.next().and_then(|s| s.parse().ok()).expect("ADDR");
    let path = a.next().expect("PATH");
    let n: usize = a.next().and_then(|s| s.parse().ok()).expect("N");
    let c: usize = a.next().and_then(|s| s.parse().ok()).expect("C");
    let auth = a.next();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..c {
            let (path, auth) = (path.clone(), auth.clone());
            let share = n / c + usize::from(i < n % c);
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                for _ in 0..share {
                    let mut req = http::Request::get(&path).header("host", "bench");
                    if let Some(a) = &auth {
                        req = req.header("authorization", a);
                    }
                    send.ready().await.expect("ready");
                    let resp = send
                        .send_request(req.body(Empty::<bytes::Bytes>::new()).expect("request"))
                        .await
                        .expect("response");
                    assert!(resp.status().is_success(), "status {}", resp.status());
                    resp.into_body().collect().await.expect("body");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
}
