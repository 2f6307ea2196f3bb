//! The gateway's state: what all workers share, and what each worker owns.
//!
//! Everything a request reads from the hot-reloadable files lives in one
//! immutable [`Snapshot`] behind one `ArcSwap`: a request loads it once and
//! sees one consistent version from start to end.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::common::random_key;
use crate::config::{Config, ConfigError, GrantSourceConfig, UpstreamConfig};
use crate::grants::{GrantCache, GrantsFile, HttpSource, Resolver, SharedCache, Source};
use crate::metrics::{Metrics, WorkerMetrics};
use crate::proxy::RequestBody;
use crate::reload::ReloadState;
use crate::request_id::RequestIds;
use crate::routes::{self, RouteTable};
use crate::transport::Http1Pool;

/// What a request reads from the reloadable files.
pub struct Snapshot {
    /// The route table.
    pub routes: Arc<RouteTable>,
    /// The grants file, when `grants.source = "file"`.
    pub grants: Option<Arc<GrantsFile>>,
}

impl Snapshot {
    /// Loads the files `config` names.
    pub fn load(config: &Config) -> Result<Snapshot, ConfigError> {
        let routes = routes::load(&config.routes_file, &config.upstream_names())?;
        let grants = match &config.grants.source {
            GrantSourceConfig::File(path) => Some(Arc::new(GrantsFile::load(path)?)),
            GrantSourceConfig::Http(_) => None,
        };
        Ok(Snapshot {
            routes: Arc::new(routes),
            grants,
        })
    }
}

/// State shared by all workers and the admin listener.
pub struct Shared {
    /// The main config (never reloaded).
    pub config: Config,
    /// The current snapshot; swapped whole on reload.
    pub snapshot: ArcSwap<Snapshot>,
    /// The grants cache (its shared level and statistics:
    /// [`GrantCache::shared`]).
    pub cache: GrantCache,
    /// Key of the credential hash: random per process, or from
    /// `grants.cache.shared_key_file` when the cache is shared.
    pub secret: Arc<[u8; 32]>,
    /// Request id generator.
    pub request_ids: RequestIds,
    /// Set when a stop signal arrives: `/readyz` answers 503.
    pub draining: AtomicBool,
    /// Every worker's counters.
    pub metrics: Metrics,
    /// Reload bookkeeping (admin and reload only; never on the hot path).
    pub reload: Mutex<ReloadState>,
    /// The proxy listener's TLS config, when `tls_cert` is set.
    pub tls: Option<Arc<crate::server::tls::TlsState>>,
}

/// A gateway ready to serve: config validated, files loaded.
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

impl Gateway {
    /// Loads the files the config names and builds the shared state.
    pub fn new(config: Config) -> Result<Gateway, ConfigError> {
        let snapshot = Snapshot::load(&config)?;
        let tls = match &config.server.tls {
            Some(files) => Some(Arc::new(crate::server::tls::TlsState::load(files)?)),
            None => None,
        };
        let mut cache = GrantCache::new(config.grants.cache);
        if let Some(s) = &config.grants.shared {
            let shared =
                SharedCache::new(s.clone()).map_err(|m| ConfigError::file(&config.file, m))?;
            cache = cache.with_shared(Arc::new(shared));
        }
        // With a shared cache every instance must compute the same keys.
        let secret = config
            .grants
            .shared
            .as_ref()
            .map_or_else(random_key, |s| s.hash_key);
        Ok(Gateway {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(snapshot),
                cache,
                secret: Arc::new(secret),
                request_ids: RequestIds::new(),
                draining: AtomicBool::new(false),
                metrics: Metrics::default(),
                reload: Mutex::new(ReloadState::default()),
                tls,
                config,
            }),
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// State for one more worker thread: its own connection pools.
    pub(crate) fn worker(&self) -> Worker {
        let shared = Arc::clone(&self.shared);
        let metrics = shared.metrics.worker();
        let upstreams = shared
            .config
            .upstreams
            .iter()
            .map(|u| Upstream {
                pool: Http1Pool::new(
                    u.origin.connect_to.clone(),
                    u.origin.tls.clone(),
                    u.connect_timeout,
                ),
                config: u.clone(),
            })
            .collect();
        let source = match &shared.config.grants.source {
            GrantSourceConfig::Http(h) => Source::Http(HttpSource::new(
                Arc::new((**h).clone()),
                Arc::clone(&metrics),
            )),
            GrantSourceConfig::File(_) => Source::File,
        };
        let resolver = Resolver::new(shared.cache.clone(), Arc::clone(&shared.secret), source);
        Worker {
            shared,
            upstreams,
            resolver,
            metrics,
        }
    }
}

/// One upstream as a worker sees it.
pub struct Upstream {
    /// Its config.
    pub config: UpstreamConfig,
    /// This worker's connections to it.
    pub pool: Arc<Http1Pool<RequestBody>>,
}

/// What one worker thread owns.
pub struct Worker {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Upstreams by index, with this worker's pools.
    pub upstreams: Box<[Upstream]>,
    /// Grant resolution over this worker's connections.
    pub resolver: Resolver,
    /// What this worker counts.
    pub metrics: Arc<WorkerMetrics>,
}
