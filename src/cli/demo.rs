//! `permgate demo`: the example credential API and the gateway in front of
//! it, in one process, until Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use crate::Gateway;
use crate::config::{Config, LogFormat};
use crate::demo::{GRANTS, ROUTES, api, banner, config_text};
use crate::server::{Listeners, serve_blocking, stop_signal};

/// Runs the demo until Ctrl-C (or SIGTERM).
pub fn run(port: u16, log_format: Option<LogFormat>) -> ExitCode {
    crate::telemetry::init(log_format.unwrap_or_default(), "info");
    let dir = std::env::temp_dir().join(format!("permgate-demo-{}", std::process::id()));
    let result = serve(port, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

fn serve(port: u16, dir: &Path) -> Result<(), String> {
    let api_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind the example API: {e}"))?;
    let api_addr = api_listener.local_addr().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in [
        ("routes.toml", ROUTES),
        ("grants.toml", GRANTS),
        ("permgate.toml", &config_text(api_addr)),
    ] {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))?;
    }
    let config = Config::load(&dir.join("permgate.toml")).map_err(|e| e.to_string())?;
    let gateway = Gateway::new(config).map_err(|e| e.to_string())?;
    let proxy = match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("port {port} is in use; using a free port instead");
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?
        }
        Err(e) => return Err(format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let admin = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let (gateway_addr, admin_addr) = (
        proxy.local_addr().map_err(|e| e.to_string())?,
        admin.local_addr().map_err(|e| e.to_string())?,
    );

    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_thread = std::thread::Builder::new()
        .name("permgate-demo-api".into())
        .spawn(move || serve_api(api_listener, api_stopped))
        .map_err(|e| format!("cannot start the example API: {e}"))?;
    super::print_out(&banner(gateway_addr, api_addr, admin_addr, dir));
    let served = serve_blocking(gateway, Listeners { proxy, admin }, stop_signal());
    let _ = stop_api.send(());
    let _ = api_thread.join();
    served.map_err(|e| e.to_string())
}

/// Serves the example API on its own thread until `stop` fires.
fn serve_api(listener: std::net::TcpListener, stop: tokio::sync::oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("permgate: cannot start the example API: {e}"),
    };
    rt.block_on(async move {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener));
        match listener {
            Ok(l) => {
                api::ExampleApi::new()
                    .serve(l, async {
                        let _ = stop.await;
                    })
                    .await
            }
            Err(e) => eprintln!("permgate: cannot serve the example API: {e}"),
        }
    });
}
