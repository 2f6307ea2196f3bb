//! The admin listener and a graceful stop.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn health_and_readiness_then_drain() {
    let backend = Backend::echo().await;
    let mut gw = GatewayBuilder::new("[[route]]\npath = \"/{*p}\"\npublic = true\n")
        .backend(backend.addr)
        .server("drain_delay = \"1s\"")
        .start();
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
    assert_eq!(get(gw.admin, "/readyz", None).await.status, 200);
    assert_eq!(get(gw.admin, "/nope", None).await.status, 404);

    gw.request_stop();
    let draining = eventually(Duration::from_secs(3), async || {
        get(gw.admin, "/readyz", None).await.status == 503
    })
    .await;
    assert!(draining, "/readyz fails once a stop is requested");
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
    assert_eq!(
        get(gw.addr, "/still-serving", None).await.status,
        200,
        "traffic is served during drain_delay"
    );
    let stopped = eventually(Duration::from_secs(10), async || gw.is_stopped()).await;
    assert!(stopped);
    gw.stop().unwrap();
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn in_flight_requests_finish_before_the_stop() {
    let backend =
        Backend::start(|_| Reply::json(200, "{\"slow\":true}").delayed(Duration::from_millis(800)))
            .await;
    let mut gw = GatewayBuilder::new("[[route]]\npath = \"/{*p}\"\npublic = true\n")
        .backend(backend.addr)
        .start();
    let addr = gw.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow", None).await });
    let arrived = eventually(Duration::from_secs(3), async || backend.count() == 1).await;
    assert!(arrived);
    gw.request_stop();
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request completed");
    assert!(r.body.starts_with(b"{\"slow\""));
    gw.stop().unwrap();
}
