//! The permgate process under test: its files, its start, its admin
//! listener, reloads, and its stop.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::table;

/// A running gateway.
pub struct Gateway {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The proxy listener.
    pub proxy: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    dir: PathBuf,
}

/// The main config: short timeouts and a short cache TTL so that the
/// faults show, a 1 MiB body limit so that large bodies pass and larger
/// ones do not.
fn config(backend: SocketAddr, api: SocketAddr) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
max_request_body = "1MiB"
request_header_timeout = "5s"
drain_delay = "0s"
shutdown_timeout = "5s"

[admin]
listen = "127.0.0.1:0"

[upstreams.default]
url = "http://{backend}"
connect_timeout = "1s"
timeout = "1s"

[grants]
source = "http"
url = "http://{api}/grants"
timeout = "500ms"

[grants.cache]
ttl = "2s"
negative_ttl = "1s"

[routes]
file = "routes.toml"

[log]
format = "json"
level = "info"
access_log = false
"#
    )
}

/// Writes `text` to `path` by a temporary file and a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Checks that both routes variants load and that every `[[test]]` (the
/// oracle's verdict for every caller, grants variant and probe) passes
/// with `permgate check`, and that the broken variant does not load.
pub fn check_variants(
    bin: &Path,
    dir: &Path,
    backend: SocketAddr,
    api: SocketAddr,
) -> Result<(), String> {
    let files = [
        ("check-0", table::routes_file(0), true),
        ("check-1", table::routes_file(1), true),
        ("check-broken", table::broken_routes_file(), false),
    ];
    for (name, routes, good) in files {
        let routes_name = format!("{name}-routes.toml");
        std::fs::write(dir.join(&routes_name), routes).map_err(|e| e.to_string())?;
        let cfg = config(backend, api).replace("\"routes.toml\"", &format!("\"{routes_name}\""));
        let cfg_path = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg_path, cfg).map_err(|e| e.to_string())?;
        let out = Command::new(bin)
            .args(["check", "--config"])
            .arg(&cfg_path)
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        if out.status.success() != good {
            return Err(format!(
                "permgate check on {routes_name}: expected {}, got:\n{}{}",
                if good { "success" } else { "failure" },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

impl Gateway {
    /// Writes the files into `dir` and starts `bin`; its log goes to
    /// `dir/permgate.log`. Waits (10 s at most) for the line that names
    /// the bound addresses.
    pub fn start(
        bin: &Path,
        dir: &Path,
        backend: SocketAddr,
        api: SocketAddr,
    ) -> Result<Gateway, String> {
        std::fs::write(dir.join("routes.toml"), table::routes_file(0))
            .map_err(|e| e.to_string())?;
        let cfg = dir.join("permgate.toml");
        std::fs::write(&cfg, config(backend, api)).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = dir.join("permgate.log");
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(log_path).ok();
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(l) = log.as_mut() {
                    let _ = writeln!(l, "{line}");
                }
                if line.contains("permgate serving")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
            "permgate did not log `permgate serving` within 10 s (see permgate.log)".to_string()
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        let field = |name: &str| -> Result<SocketAddr, String> {
            find_field(&v, name)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("no `{name}` address in {line}"))
        };
        Ok(Gateway {
            pid: child.id(),
            proxy: field("listen")?,
            admin: field("admin")?,
            child,
            dir: dir.to_path_buf(),
        })
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGHUP.
    pub fn sighup(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
        }
    }

    /// Replaces the routes file.
    pub fn write_routes(&self, text: &str) {
        if let Err(e) = write_atomic(&self.dir.join("routes.toml"), text) {
            eprintln!("soak: cannot write routes.toml: {e}");
        }
    }

    /// SIGTERM, then waits (10 s at most); the exit status, if it exited.
    pub fn stop(mut self) -> Option<std::process::ExitStatus> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..200 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

/// A string field anywhere in a JSON log line (the layout nests fields).
fn find_field<'v>(v: &'v serde_json::Value, name: &str) -> Option<&'v str> {
    match v {
        serde_json::Value::Object(m) => m
            .get(name)
            .and_then(|f| f.as_str())
            .or_else(|| m.values().find_map(|c| find_field(c, name))),
        _ => None,
    }
}

/// One request on a fresh connection to the admin listener: status and
/// body (`None` if it failed or took over 5 s).
pub async fn admin(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, String)> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "admin")
            .body(Empty::<Bytes>::new())
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .ok()
        .flatten()
}

/// The value of an unlabelled series in a Prometheus exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
