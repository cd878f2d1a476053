//! The eager worker: a pingora background service (its own thread) that takes the
//! uploads [`crate::eager::queue::EagerQueue`] queued and makes each of their app's
//! eager results, one at a time, each once the transform pool is idle, through the
//! download's own pipeline ([`crate::fetch::derived`]): in a cluster in `serve` mode
//! the source's owner node (asked as a download would ask it, marked as background
//! work so the owner too waits for its own idle pool), else plan and obtain here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use crate::cache::CacheStatus;
use crate::config::{AppConfig, DownloadMode, EagerEntry};
use crate::eager::queue::Upload;
use crate::error::ApiError;
use crate::fetch::derived::{self, Ask, Located};
use crate::file_type::Family;
use crate::services::Services;

/// Longest an eager result waits for an idle pool; then it and the rest of its
/// upload's results are dropped (counted): a pool busy that long has requests to
/// serve, and the download makes the result on demand as it would without eager.
pub const IDLE_PATIENCE: Duration = Duration::from_secs(10);

/// What became of one eager result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Made now (or read from the store's `_derived/` copy) and cached.
    Made,
    /// Already cached.
    Cached,
    /// Not made: the pool (this node's, or the owner's) stayed busy.
    Dropped,
    /// Making it failed (logged).
    Failed,
}

impl Outcome {
    /// The `filegate_eager_total` label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Made => "made",
            Outcome::Cached => "cached",
            Outcome::Dropped => "dropped",
            Outcome::Failed => "failed",
        }
    }
}

/// The background service that makes eager results (add it to the server).
pub struct EagerWorker {
    services: Arc<Services>,
}

impl EagerWorker {
    /// A worker over `services`, taking the uploads of `services.eager`.
    pub fn new(services: Arc<Services>) -> Self {
        EagerWorker { services }
    }

    fn count(&self, outcome: Outcome, n: usize) {
        self.services
            .metrics
            .eager_total
            .with_label_values(&[outcome.label()])
            .inc_by(n as u64);
    }

    /// Makes every eager result of one upload, in the order the config lists them; once
    /// one finds the pool (here, or at the owner) busy, the rest are dropped too.
    async fn make_all(&self, upload: &Upload) {
        let services = &self.services;
        let Some(app) = services.config.apps.get(&upload.app_id) else {
            return;
        };
        for (i, entry) in app.eager.iter().enumerate() {
            let outcome = make_one(services, &upload.app_id, app, upload, entry).await;
            if outcome == Outcome::Dropped {
                let left = app.eager.len() - i;
                log::info!(
                    "eager: {}: the transform pool stayed busy; {left} results dropped",
                    upload.key
                );
                self.count(Outcome::Dropped, left);
                return;
            }
            self.count(outcome, 1);
        }
    }
}

#[async_trait]
impl BackgroundService for EagerWorker {
    /// Runs until shutdown; uploads still queued then are left unmade (their downloads
    /// make them on demand).
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.services.eager.take_receiver() else {
            log::warn!("eager: a second worker was started; it does nothing");
            return;
        };
        loop {
            let upload = tokio::select! {
                upload = rx.recv() => upload,
                _ = shutdown.changed() => None,
            };
            let Some(upload) = upload else {
                return;
            };
            self.services.eager.note_depth();
            self.make_all(&upload).await;
        }
    }
}

/// Makes one result; failures are logged here (never reach the uploader).
async fn make_one(
    services: &Arc<Services>,
    app_id: &str,
    app: &AppConfig,
    upload: &Upload,
    entry: &EagerEntry,
) -> Outcome {
    match derive(services, app_id, app, upload, entry).await {
        Ok(CacheStatus::Miss) => Outcome::Made,
        Ok(_) => Outcome::Cached,
        Err(e) if is_busy(&e) => Outcome::Dropped,
        Err(e) => {
            log::warn!("eager: {}: {e}", upload.key);
            Outcome::Failed
        }
    }
}

/// A pool (here or at the owner) too busy to take background work.
fn is_busy(e: &ApiError) -> bool {
    matches!(
        e.status(),
        http::StatusCode::SERVICE_UNAVAILABLE | http::StatusCode::TOO_MANY_REQUESTS
    )
}

/// The download's own pipeline for `entry`: its representation parsed as the download
/// parses it, then the owner's answer (cluster, serve mode) or, in an idle turn of this
/// node's pool, the result obtained here, and in redirect mode the `_derived/` copy
/// the redirect will name. A busy pool is a 503 (here) or 429 (the owner's).
async fn derive(
    services: &Arc<Services>,
    app_id: &str,
    app: &AppConfig,
    upload: &Upload,
    entry: &EagerEntry,
) -> Result<CacheStatus, ApiError> {
    let repr = entry.representation()?;
    // The upload was sniffed an image: what a download of an image would want.
    let ask = Ask {
        app_id,
        app,
        key: &upload.key,
        wanted: repr.wanted_of(Family::Image)?,
        strategy: repr.strategy,
        accept: entry.accept.as_deref(),
        background: true,
    };
    let plan = match derived::locate(services, &ask).await? {
        Located::Owner(found) => return Ok(found.status),
        Located::Here(plan) => plan,
    };
    // Made here: only in an idle turn of this node's pool (asking an owner needs none:
    // the owner takes its own).
    let _turn = services
        .media
        .idle_turn(IDLE_PATIENCE)
        .await
        .ok_or_else(|| ApiError::overloaded(1))?;
    let found = derived::obtain(services, &plan).await?;
    let status = found.status;
    // Info is answered inline, never redirected to a copy.
    let inline = matches!(ask.wanted, crate::representation::Wanted::Info { .. });
    if app.download_mode == DownloadMode::Redirect && !inline {
        derived::ensure_copy(services, &plan, found).await?;
    }
    Ok(status)
}
