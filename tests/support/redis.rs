//! A real `redis-server` on a free 127.0.0.1 port, stopped on drop.
//!
//! Under `CI=true` a missing `redis-server` fails the test; elsewhere the
//! test is skipped with a loud message.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// With TLS: a second port and the CA, certificate and key files.
    tls: Option<(u16, [PathBuf; 3])>,
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl RedisServer {
    /// Starts one, or `None` when `redis-server` is not installed outside
    /// CI (under `CI=true` that panics).
    pub fn start() -> Option<RedisServer> {
        Self::start_with(None)
    }

    /// Starts one that also speaks TLS on a second port ([`RedisServer::tls_url`])
    /// with `cert` and `key`, trusting `ca` for clients that present one.
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> Option<RedisServer> {
        Self::start_with(Some([
            ca.to_path_buf(),
            cert.to_path_buf(),
            key.to_path_buf(),
        ]))
    }

    fn start_with(tls: Option<[PathBuf; 3]>) -> Option<RedisServer> {
        if !installed() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server is not installed: .ci/run must install it");
            }
            eprintln!(
                "\n!!!!! SKIPPED: redis-server is not installed (apt-get install redis-server); the shared-cache test did not run !!!!!\n"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut server = RedisServer {
            port: 0,
            child: None,
            dir,
            tls: None,
        };
        // A port picked this way can be taken by someone else before the
        // server binds it: try a few.
        for _ in 0..5 {
            server.port = free_port();
            server.tls = tls.clone().map(|files| (free_port(), files));
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts the server again on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        assert!(
            self.spawn(),
            "redis-server did not start again on {}",
            self.port
        );
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        if let Some((port, [ca, cert, key])) = &self.tls {
            cmd.arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-ca-cert-file")
                .arg(ca)
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .args(["--tls-auth-clients", "no"]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..250 {
            if self.ping() {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false; // exited: the port was taken
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        self.connection()
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
            .is_some_and(|p| p == "PONG")
    }

    fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://127.0.0.1:TLS_PORT/0`, for a server started with
    /// [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> String {
        let (port, _) = self.tls.as_ref().expect("started with TLS");
        format!("rediss://127.0.0.1:{port}/0")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A folder that lives as long as the server (for the shared key file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a 32-byte key file in [`RedisServer::dir`] and returns its path.
    pub fn key_file(&self) -> PathBuf {
        let path = self.dir.path().join("cache.key");
        let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        std::fs::write(&path, key).unwrap();
        path
    }

    /// Runs one command and returns its answer (5 s limit).
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = self.connection().expect("connect to the test redis-server");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Every key (SCAN, at most 100 rounds).
    pub fn keys(&self) -> Vec<String> {
        let mut c = self.connection().expect("connect to the test redis-server");
        let mut cursor = 0u64;
        let mut out = Vec::new();
        for _ in 0..100 {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(&mut c)
                .unwrap();
            out.extend(keys);
            if next == 0 {
                return out;
            }
            cursor = next;
        }
        panic!("SCAN did not finish in 100 rounds");
    }

    /// Every key with everything it holds, as text (strings, sets, sorted
    /// sets).
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.keys()
            .into_iter()
            .map(|k| {
                let kind: String = self.cmd(&["TYPE", &k]);
                let content: Vec<u8> = match kind.as_str() {
                    "string" => self
                        .cmd::<Option<Vec<u8>>>(&["GET", &k])
                        .unwrap_or_default(),
                    "set" => self.cmd::<Vec<Vec<u8>>>(&["SMEMBERS", &k]).concat(),
                    "zset" => self
                        .cmd::<Vec<Vec<u8>>>(&["ZRANGE", &k, "0", "-1"])
                        .concat(),
                    "none" => Vec::new(), // expired since the scan
                    other => panic!("unexpected {other} key {k}"),
                };
                (k, content)
            })
            .collect()
    }

    /// Waits (at most 5 s) until `n` clients listen on `channel`.
    pub fn wait_subscribers(&self, channel: &str, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..250 {
            let (_, count): (String, i64) = self.cmd(&["PUBSUB", "NUMSUB", channel]);
            if count >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{n} subscribers on {channel}");
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{n} subscribers on {channel}: not within 250 polls");
    }

    /// Stops the server now (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
