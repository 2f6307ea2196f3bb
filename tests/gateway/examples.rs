//! The example configs in `config/` load and run.

use std::path::Path;

use permgate::config::Config;
use permgate::{Gateway, Listeners};

#[tokio::test]
async fn the_example_config_loads_and_serves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/permgate.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gateway.snapshot().routes.routes().len(), 6);
    // Serve on ephemeral ports instead of the configured ones.
    let listeners = Listeners {
        proxy: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        admin: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let addr = listeners.proxy.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(permgate::run(gateway, listeners, async {
            let _ = stopped.await;
        }))
    });
    let r = crate::support::get(addr, "/api/v2/integrations/credentials", None).await;
    assert_eq!(r.status, 401);
    let r = crate::support::get(addr, "/elsewhere", None).await;
    assert_eq!(r.status, 403);
    stop.send(()).unwrap();
    // drain_delay is 5 s in the example; run returns after it.
    server.join().unwrap().unwrap();
}
