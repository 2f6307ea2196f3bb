//! Hot reload of the routes file and the grants file.
//!
//! One procedure, [`Reloader::reload`], reads the file, compiles a complete
//! new [`Snapshot`] and swaps it in with one store; on any error the old
//! snapshot keeps serving and the error is kept for `/admin/routes` until a
//! good file loads. Reloads are serialized by a lock of their own; the
//! bookkeeping read by `/admin/routes` is locked only briefly, never while
//! a file is read or compiled. Every trigger runs it on a blocking thread
//! lowered to nice 19, so neither the admin listener (probes) nor the
//! workers wait for a compile. Four triggers call it:
//!
//! * a change on disk, seen by `notify` on the file's folder (so editors that
//!   write a temp file and rename it, and Kubernetes ConfigMaps that swap a
//!   `..data` symlink, are seen too), debounced;
//! * a poll of the file's metadata and content hash every second, for file
//!   systems where notifications do not arrive;
//! * `SIGHUP`;
//! * `POST /admin/reload`.
//!
//! Every reload, whatever its trigger, also compares the main config file
//! with the one running (and so does the poll): a change is logged as not
//! applied and reported as needing a restart; it is never applied.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::common::sha256_hex;
use crate::config::{Config, ConfigError, GrantSourceConfig, read_file};
use crate::gateway::{Shared, Snapshot};
use crate::grants::GrantsFile;
use crate::routes;

/// Quiet time after a file event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// How often the files are polled.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What a successful reload produced.
#[derive(Clone, Debug)]
pub struct ReloadSummary {
    /// Routes in the table now serving.
    pub routes: usize,
    /// SHA-256 of the routes file now serving.
    pub sha256: String,
    /// When that table was loaded.
    pub loaded_at: SystemTime,
    /// Whether the table was replaced (false: the file had not changed).
    pub changed: bool,
}

/// What a reload did, and whether the main config on disk needs a restart.
#[derive(Debug)]
pub struct ReloadOutcome {
    /// The routes and grants reload.
    pub result: Result<ReloadSummary, ConfigError>,
    /// The main config file differs from the one running.
    pub restart_needed: bool,
}

/// The last reload that failed.
#[derive(Clone, Debug)]
pub struct ReloadFailure {
    /// What was wrong, with file, line and column.
    pub error: ConfigError,
    /// When it was seen.
    pub at: SystemTime,
}

/// Reload bookkeeping, read by `/admin/routes`.
#[derive(Default)]
pub struct ReloadState {
    /// The last failure, cleared by the next good load.
    pub last_failure: Option<ReloadFailure>,
    /// Hash of the routes file content last tried (good or bad), so a
    /// broken file is reported once, not at every poll.
    last_tried: Option<String>,
    /// Hash of the main config file content last warned about.
    config_warned: Option<String>,
    /// Snapshots swapped out but maybe still used by requests in flight;
    /// freed by the reloader, off the request path, once nothing else holds
    /// them.
    retired: Vec<Arc<Snapshot>>,
    /// Held by a reload from start to end, so reloads run one at a time
    /// while this state stays free for `/admin/routes`.
    serial: Arc<Mutex<()>>,
    /// Reloads that replaced the table so far.
    pub succeeded: u64,
    /// Failed reloads so far.
    pub failed: u64,
}

impl ReloadState {
    /// Takes out the retired snapshots no request holds any more, to be
    /// dropped (freed) once this state is unlocked.
    fn reap(&mut self) -> Vec<Arc<Snapshot>> {
        let (free, keep) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|s| Arc::strong_count(s) == 1);
        self.retired = keep;
        free
    }

    /// Whether the main config file on disk differs from the one running.
    pub fn restart_needed(&self) -> bool {
        self.config_warned.is_some()
    }
}

/// Why a reload was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A file event or the poll saw a change.
    FileChange,
    /// SIGHUP.
    Signal,
    /// `POST /admin/reload`.
    Admin,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::FileChange => "file change",
            Trigger::Signal => "SIGHUP",
            Trigger::Admin => "admin request",
        }
    }
}

/// Reloads the routes file into the shared snapshot.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl Reloader {
    /// A reloader for `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// [`Self::reload`] on a blocking thread at low priority, awaited: the
    /// calling runtime goes on serving its other tasks meanwhile.
    pub async fn reload_off_thread(&self, trigger: Trigger) -> ReloadOutcome {
        self.off_thread(move |r| r.reload(trigger)).await
    }

    /// Runs `work` on a blocking thread lowered to nice 19 and awaits it.
    /// A panic in `work` resumes here.
    async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> T {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            lower_this_threads_priority();
            work(&this)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Reloads the routes and grants files (on any error the old snapshot
    /// keeps serving), then checks the main config file, which is never
    /// applied. Blocks
    /// while another reload runs and while the files are read and compiled:
    /// call it on a blocking thread ([`Self::reload_off_thread`]).
    pub fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let serial = Arc::clone(&self.state().serial);
        let _one_at_a_time = serial.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.reload_files(trigger);
        self.reload_tls(false);
        let restart_needed = self.check_main_config(Some(trigger));
        ReloadOutcome {
            result,
            restart_needed,
        }
    }

    /// Reads the routes file (and the grants file, for the file source),
    /// compiles what changed and swaps in a new snapshot. Both files are one
    /// unit: if either fails, the old snapshot keeps serving. Unchanged
    /// content keeps the current snapshot (and clears a stale error).
    fn reload_files(&self, trigger: Trigger) -> Result<ReloadSummary, ConfigError> {
        let config = &self.shared.config;
        let files = Files::read(config).map_err(|e| self.failed(trigger, e))?;
        self.state().last_tried = Some(files.fingerprint());
        let current = self.shared.snapshot.load_full();
        let next = files
            .compile(config, &current)
            .map_err(|e| self.failed(trigger, e))?;
        let routes_changed = !Arc::ptr_eq(&next.routes, &current.routes);
        let grants_changed = match (&next.grants, &current.grants) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (a, b) => a.is_some() != b.is_some(),
        };
        let changed = routes_changed || grants_changed;
        let routes = next.routes.routes().len();
        let old = changed.then(|| self.shared.snapshot.swap(Arc::new(next)));
        let freed = {
            let mut state = self.state();
            state.last_failure = None;
            if let Some(old) = old {
                state.retired.push(old);
                state.succeeded += 1;
            }
            state.reap()
        };
        drop(freed);
        if changed {
            if grants_changed {
                // Keys are salted with the file's hash, so old answers are
                // unreachable already; this frees their memory.
                self.shared.cache.purge();
            }
            tracing::info!(
                trigger = trigger.as_str(),
                routes,
                routes_changed,
                grants_changed,
                "reloaded"
            );
        }
        let current = self.shared.snapshot.load();
        Ok(ReloadSummary {
            routes: current.routes.routes().len(),
            sha256: current.routes.source.sha256.clone(),
            loaded_at: current.routes.source.loaded_at,
            changed,
        })
    }

    /// Reloads the TLS certificate, key and client CA when their bytes
    /// changed (the last good ones keep serving on an error, which the TLS
    /// state records). `settle`: skip files modified within the debounce.
    fn reload_tls(&self, settle: bool) {
        let Some(tls) = &self.shared.tls else { return };
        if settle && tls.paths().iter().any(|f| modified_within(f, DEBOUNCE)) {
            return;
        }
        let _ = tls.reload();
    }

    /// Reloads if the files' content differs from what was last tried;
    /// otherwise only checks the main config file.
    fn reload_if_changed(&self) {
        let config = &self.shared.config;
        let files = [Some(&config.routes_file), grants_file(config)];
        if files.iter().flatten().any(|f| modified_within(f, DEBOUNCE)) {
            // Possibly still being written; the next event or poll looks again.
            return;
        }
        let fingerprint = Files::read(config)
            .map(|f| f.fingerprint())
            .unwrap_or_default();
        let last_tried = self.state().last_tried.clone();
        if last_tried.as_deref() != Some(fingerprint.as_str()) {
            self.reload(Trigger::FileChange);
        } else {
            self.check_main_config(None);
        }
    }

    /// Whether the main config file on disk differs from the one running
    /// (an unreadable file leaves the last answer). Warns that it was not
    /// applied on every reload, and once per content otherwise.
    fn check_main_config(&self, reload: Option<Trigger>) -> bool {
        let Ok(bytes) = std::fs::read(&self.shared.config.file) else {
            return self.state().restart_needed();
        };
        let hash = sha256_hex(&bytes);
        let mut state = self.state();
        if hash == self.shared.config.sha256 {
            state.config_warned = None;
            return false;
        }
        let unseen = state.config_warned.as_ref() != Some(&hash);
        state.config_warned = Some(hash);
        drop(state);
        if unseen || reload.is_some() {
            tracing::warn!(
                trigger = reload.map(Trigger::as_str),
                file = %self.shared.config.file.display(),
                "the main config file changed on disk and was not applied: restart permgate to apply it"
            );
        }
        true
    }

    /// Records a failed reload; the previous table keeps serving.
    fn failed(&self, trigger: Trigger, error: ConfigError) -> ConfigError {
        tracing::error!(trigger = trigger.as_str(), error = %error, "routes not reloaded; the previous table keeps serving");
        let mut state = self.state();
        state.last_failure = Some(ReloadFailure {
            error: error.clone(),
            at: SystemTime::now(),
        });
        state.failed += 1;
        error
    }

    /// Frees retired snapshots no request holds any more, outside the lock.
    fn reap(&self) {
        let freed = self.state().reap();
        drop(freed);
    }

    /// The bookkeeping, locked: hold it only briefly.
    fn state(&self) -> MutexGuard<'_, ReloadState> {
        self.shared.reload.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches files and SIGHUP until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // The baseline is what the serving snapshot was built from, not the
        // files as they are now: a change made before this task started
        // must still be seen.
        let loaded = fingerprint_of(&self.shared.snapshot.load());
        self.state().last_tried = Some(loaded);
        self.check_main_config(None);
        let (tx, mut events) = mpsc::channel::<()>(1);
        let _watcher = if self.shared.config.routes_watch {
            let mut files = vec![
                self.shared.config.routes_file.as_path(),
                self.shared.config.file.as_path(),
            ];
            if let Some(tls) = &self.shared.tls {
                files.extend(tls.paths());
            }
            watch_folders(&files, tx)
        } else {
            None
        };
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(()) = events.recv() => {
                    // Let a burst of events (write, chmod, rename) settle.
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                    self.off_thread(|r| {
                        r.reload_if_changed();
                        r.reload_tls(true);
                    })
                    .await;
                }
                _ = poll.tick() => {
                    let watch = self.shared.config.routes_watch;
                    self.off_thread(move |r| {
                        if watch {
                            r.reload_if_changed();
                            r.reload_tls(true);
                        }
                        r.reap();
                    })
                    .await;
                }
                Some(()) = recv_signal(&mut hup) => {
                    self.reload_off_thread(Trigger::Signal).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// The reloadable files as read from disk.
struct Files {
    routes: String,
    routes_sha256: String,
    grants: Option<(String, String)>,
}

impl Files {
    fn read(config: &Config) -> Result<Self, ConfigError> {
        let routes = read_file(&config.routes_file)?;
        let grants = match grants_file(config) {
            Some(path) => {
                let text = read_file(path)?;
                let hash = sha256_hex(text.as_bytes());
                Some((text, hash))
            }
            None => None,
        };
        Ok(Self {
            routes_sha256: sha256_hex(routes.as_bytes()),
            routes,
            grants,
        })
    }

    /// One string that changes when either file does.
    fn fingerprint(&self) -> String {
        fingerprint(
            &self.routes_sha256,
            self.grants.as_ref().map(|(_, g)| g.as_str()),
        )
    }

    /// A snapshot with what changed compiled anew and the rest shared.
    fn compile(&self, config: &Config, current: &Snapshot) -> Result<Snapshot, ConfigError> {
        let routes = if current.routes.source.sha256 == self.routes_sha256 {
            Arc::clone(&current.routes)
        } else {
            Arc::new(routes::parse(
                &self.routes,
                &config.routes_file,
                &config.upstream_names(),
            )?)
        };
        let grants = match (&self.grants, grants_file(config), &current.grants) {
            (Some((_, hash)), _, Some(cur)) if cur.sha256 == *hash => Some(Arc::clone(cur)),
            (Some((text, _)), Some(path), _) => Some(Arc::new(GrantsFile::parse(text, path)?)),
            _ => None,
        };
        Ok(Snapshot { routes, grants })
    }
}

fn fingerprint(routes_sha256: &str, grants_sha256: Option<&str>) -> String {
    match grants_sha256 {
        Some(g) => format!("{routes_sha256}+{g}"),
        None => routes_sha256.to_string(),
    }
}

/// The fingerprint of the files a snapshot was built from.
fn fingerprint_of(snapshot: &Snapshot) -> String {
    fingerprint(
        &snapshot.routes.source.sha256,
        snapshot.grants.as_ref().map(|g| g.sha256.as_str()),
    )
}

/// The grants file, when the config uses one.
fn grants_file(config: &Config) -> Option<&PathBuf> {
    match &config.grants.source {
        GrantSourceConfig::File(path) => Some(path),
        GrantSourceConfig::Http(_) => None,
    }
}

/// Whether `file` (through symlinks) was modified less than `within` ago.
fn modified_within(file: &Path, within: Duration) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < within)
}

async fn recv_signal(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Watches the folders holding `files`; any change there sends on `tx`.
fn watch_folders(files: &[&Path], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            if !matches!(e.kind, EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable; polling every second");
            return None;
        }
    };
    let mut folders: Vec<PathBuf> = files
        .iter()
        .map(|f| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    folders.dedup();
    for folder in folders {
        if let Err(e) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %folder.display(), error = %e, "cannot watch folder; polling every second");
        }
    }
    Some(watcher)
}

/// Lowers the scheduling priority of the calling thread to nice 19, so
/// compiling a large table shares a core with the workers on unequal terms:
/// requests in flight barely notice a reload. It stays lowered (raising it
/// back needs privileges), which suits the blocking threads of the runtime
/// that reloads, as reloads are all they run. Linux only (elsewhere the call
/// would apply to the whole process); a failure is logged at debug level and
/// ignored.
fn lower_this_threads_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "could not lower the priority of the reload thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn lowers_the_priority_of_the_calling_thread_only() {
        use rustix::process::getpriority_process;
        let before = getpriority_process(None).unwrap();
        let lowered = std::thread::spawn(|| {
            lower_this_threads_priority();
            getpriority_process(Some(rustix::thread::gettid())).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 19);
        assert_eq!(
            getpriority_process(None).unwrap(),
            before,
            "other threads keep theirs"
        );
    }

    #[test]
    fn retired_snapshots_are_freed_only_when_no_request_holds_them() {
        let table = routes::parse("", Path::new("routes.toml"), &["default".into()]).unwrap();
        let snapshot = Arc::new(Snapshot {
            routes: Arc::new(table),
            grants: None,
        });
        let in_flight = Arc::clone(&snapshot);
        let mut state = ReloadState::default();
        state.retired.push(snapshot);
        assert!(state.reap().is_empty());
        assert_eq!(state.retired.len(), 1, "a request still holds it");
        drop(in_flight);
        let freed = state.reap();
        assert!(
            state.retired.is_empty(),
            "taken out once the request is done"
        );
        assert_eq!(freed.len(), 1);
        assert_eq!(Arc::strong_count(&freed[0]), 1, "and dropping it frees it");
    }
}
