//! A backend and a permission API for load tests, on loopback.
//!
//!   bench_upstream BACKEND_ADDR GRANTS_ADDR
//!
//! The backend answers every request with a fixed 218-byte JSON body; the
//! permission API answers `GET /grants` with grants for
//! `Authorization: Bearer bench-token` and 401 otherwise, and `GET /authz`
//! with an empty 200 or 401 for nginx `auth_request`. One thread each.
//!
//! `/authz` has no body because nginx reads only the head of an
//! `auth_request` answer: an answer with a body makes it close the
//! connection after every check, which measures connection setup instead.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &str = r#"{"id":"42","name":"Integration-2cefbe68-cdd8-4f21-89ab-6f3036bafd3d","createdDate":"2019-12-17T16:16:21Z","type":{"name":"basicAuth"},"selfUri":"/api/v2/integrations/credentials/42","version":1,"ok":true}"#;
const GRANTS: &str = r#"{"subject":"bench","permissions":["bench:item:view"]}"#;

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn backend(_: &Request<Incoming>) -> Response<Full<Bytes>> {
    json(StatusCode::OK, BODY)
}

fn grants(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let known = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == b"Bearer bench-token");
    match (req.uri().path(), known) {
        ("/authz", true) => json(StatusCode::OK, ""),
        ("/authz", false) => json(StatusCode::UNAUTHORIZED, ""),
        (_, true) => json(StatusCode::OK, GRANTS),
        (_, false) => json(StatusCode::UNAUTHORIZED, r#"{"error":"unauthenticated"}"#),
    }
}

fn serve(
    addr: SocketAddr,
    answer: fn(&Request<Incoming>) -> Response<Full<Bytes>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc =
                        service_fn(move |req| async move { Ok::<_, Infallible>(answer(&req)) });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let backend_addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("BACKEND_ADDR (e.g. 127.0.0.1:19180)");
    let grants_addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("GRANTS_ADDR (e.g. 127.0.0.1:19181)");
    let a = serve(backend_addr, backend);
    let b = serve(grants_addr, grants);
    let _ = (a.join(), b.join());
}
