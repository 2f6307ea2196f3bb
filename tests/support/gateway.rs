//! Runs the gateway for a test, on its own threads, until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;

use permgate::config::Config;
use permgate::{Gateway, Listeners};
use tokio::sync::oneshot;

/// Builds a config and routes file and starts the gateway.
pub struct GatewayBuilder {
    routes: String,
    backend: String,
    grants_url: String,
    server: Vec<String>,
    upstream: Vec<String>,
    grants: Vec<String>,
    cache: Vec<String>,
    auth: Vec<String>,
    more: Vec<String>,
    routes_setting: Vec<String>,
    admin: Vec<String>,
    layout: Layout,
    grants_file: Option<String>,
    files: Vec<(String, Vec<u8>)>,
}

/// How the routes file is laid out on disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A plain `routes.toml`.
    Plain,
    /// Like a Kubernetes ConfigMap volume: `routes.toml -> ..data/routes.toml`,
    /// `..data -> ..v1`.
    ConfigMap,
}

impl GatewayBuilder {
    /// A gateway with this routes file.
    pub fn new(routes: &str) -> Self {
        Self {
            routes: routes.into(),
            backend: "http://127.0.0.1:9".into(),
            grants_url: "http://127.0.0.1:9/grants".into(),
            server: vec![
                "workers = 2".into(),
                "drain_delay = \"0s\"".into(),
                "shutdown_timeout = \"2s\"".into(),
            ],
            upstream: vec!["timeout = \"3s\"".into(), "connect_timeout = \"1s\"".into()],
            grants: vec!["timeout = \"500ms\"".into()],
            cache: vec![],
            auth: vec![],
            more: vec![],
            routes_setting: vec![],
            admin: vec![],
            layout: Layout::Plain,
            grants_file: None,
            files: vec![],
        }
    }

    /// Another file in the gateway's folder (certificates…), written before
    /// it starts.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Grants from this grants file (`source = "file"`) instead of an API.
    pub fn grants_file(mut self, text: &str) -> Self {
        self.grants_file = Some(text.into());
        self
    }

    /// A line under `[admin]`.
    pub fn admin(mut self, line: &str) -> Self {
        set_line(&mut self.admin, line);
        self
    }

    /// A line under `[routes]`.
    pub fn routes(mut self, line: &str) -> Self {
        set_line(&mut self.routes_setting, line);
        self
    }

    /// Lays the routes file out like a Kubernetes ConfigMap volume.
    pub fn configmap_layout(mut self) -> Self {
        self.layout = Layout::ConfigMap;
        self
    }

    /// The default upstream.
    pub fn backend(mut self, addr: SocketAddr) -> Self {
        self.backend = format!("http://{addr}");
        self
    }

    /// The default upstream's URL (e.g. `https://…`).
    pub fn backend_url(mut self, url: String) -> Self {
        self.backend = url;
        self
    }

    /// The permission API's grants URL.
    pub fn grants_url(mut self, url: String) -> Self {
        self.grants_url = url;
        self
    }

    /// A `key = value` line under `[server]` (replaces a default with that key).
    pub fn server(mut self, line: &str) -> Self {
        set_line(&mut self.server, line);
        self
    }

    /// A line under `[upstreams.default]`.
    pub fn upstream(mut self, line: &str) -> Self {
        set_line(&mut self.upstream, line);
        self
    }

    /// A line under `[grants]`.
    pub fn grants(mut self, line: &str) -> Self {
        set_line(&mut self.grants, line);
        self
    }

    /// A line under `[grants.cache]`.
    pub fn cache(mut self, line: &str) -> Self {
        set_line(&mut self.cache, line);
        self
    }

    /// A line under `[auth]`.
    pub fn auth(mut self, line: &str) -> Self {
        set_line(&mut self.auth, line);
        self
    }

    /// More TOML at the end (e.g. another `[upstreams.x]`).
    pub fn more(mut self, text: &str) -> Self {
        self.more.push(text.into());
        self
    }

    /// The main config text.
    pub fn config_text(&self) -> String {
        let join = |v: &[String]| v.join("\n");
        let source = match &self.grants_file {
            Some(_) => "source = \"file\"\nfile = \"grants.toml\"".to_string(),
            None => format!(
                "source = \"http\"\nurl = \"{}\"\n{}",
                self.grants_url,
                join(&self.grants)
            ),
        };
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{}\n\n[admin]\nlisten = \"127.0.0.1:0\"\n{}\n\n[upstreams.default]\nurl = \"{}\"\n{}\n\n\
             [auth]\n{}\n\n[grants]\n{}\n\n[grants.cache]\n{}\n\n[routes]\nfile = \"routes.toml\"\n{}\n\n\
             [log]\nlevel = \"info\"\naccess_log = true\n\n{}\n",
            join(&self.server),
            join(&self.admin),
            self.backend,
            join(&self.upstream),
            join(&self.auth),
            source,
            join(&self.cache),
            join(&self.routes_setting),
            join(&self.more),
        )
    }

    /// Writes the config, routes, grants and extra files to a new folder;
    /// returns it and the config's path.
    fn write_files(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("permgate.toml");
        std::fs::write(&config_path, self.config_text()).unwrap();
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        if let Some(g) = &self.grants_file {
            std::fs::write(dir.path().join("grants.toml"), g).unwrap();
        }
        match self.layout {
            Layout::Plain => std::fs::write(dir.path().join("routes.toml"), &self.routes).unwrap(),
            Layout::ConfigMap => {
                std::fs::create_dir(dir.path().join("..v1")).unwrap();
                std::fs::write(dir.path().join("..v1/routes.toml"), &self.routes).unwrap();
                std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
                std::os::unix::fs::symlink("..data/routes.toml", dir.path().join("routes.toml"))
                    .unwrap();
            }
        }
        (dir, config_path)
    }

    /// Writes the files and starts the gateway.
    pub fn start(self) -> RunningGateway {
        let (dir, config_path) = self.write_files();
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("test config: {e}"));
        let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("test gateway: {e}"));
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = proxy.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            permgate::serve_blocking(gateway, Listeners { proxy, admin }, async {
                let _ = stopped.await;
            })
        });
        RunningGateway {
            addr,
            admin: admin_addr,
            dir: dir.path().to_path_buf(),
            _tmp: dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

fn set_line(lines: &mut Vec<String>, line: &str) {
    let key = line.split('=').next().unwrap_or("").trim().to_string();
    lines.retain(|l| l.split('=').next().unwrap_or("").trim() != key);
    lines.push(line.into());
}

/// A gateway serving on 127.0.0.1.
pub struct RunningGateway {
    /// Proxy address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    /// Folder of its config and routes files.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningGateway {
    /// Asks it to stop, without waiting.
    pub fn request_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Whether `run` has returned.
    pub fn is_stopped(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Asks it to stop and waits until `run` has returned.
    pub fn stop(&mut self) -> std::io::Result<()> {
        self.request_stop();
        match self.thread.take() {
            Some(t) => t.join().expect("gateway thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The gateway as a `permgate run` process of its own, so what it holds
/// (file descriptors) can be counted apart from the test process.
pub struct GatewayProcess {
    /// Proxy address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    /// Folder of its config and routes files.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    child: std::process::Child,
}

impl GatewayBuilder {
    /// Writes the files and runs `permgate run` on them; returns once the
    /// log names the bound addresses (10 s limit).
    pub fn spawn_process(self) -> GatewayProcess {
        let (dir, config_path) = self.write_files();
        let log_path = dir.path().join("permgate.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_permgate"))
            .args(["run", "--config"])
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("permgate starts");
        let mut process = GatewayProcess {
            addr: ([0, 0, 0, 0], 0).into(),
            admin: ([0, 0, 0, 0], 0).into(),
            dir: dir.path().to_path_buf(),
            _tmp: dir,
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let field = |name: &str| -> Option<SocketAddr> {
                let line = text.lines().find(|l| l.contains("permgate serving"))?;
                let start = line.find(&format!(" {name}="))? + name.len() + 2;
                line[start..].split_whitespace().next()?.parse().ok()
            };
            if let (Some(addr), Some(admin)) = (field("listen"), field("admin")) {
                process.addr = addr;
                process.admin = admin;
                return process;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "permgate did not start: {text}"
            );
            assert!(
                process.child.try_wait().unwrap().is_none(),
                "permgate exited: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl GatewayProcess {
    /// File descriptors the process holds now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
