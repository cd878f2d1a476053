//! Eager derivation: when an upload of an image completes where filegate sees it (the
//! embedded store's PUT and POST, or a pass-through PUT/POST the S3 store answered
//! 2xx), the results its app lists in `apps.<id>.eager` are made in the background, so
//! the first download of each is a cache `HIT`.
//!
//! Bounded and low priority by construction:
//! - [`EagerQueue::submit`] never waits: the upload is queued (at most
//!   `media.eager_queue` of them) or its results are dropped, and counted;
//! - one worker ([`crate::eager::worker::EagerWorker`], a background service with its
//!   own thread) makes them one at a time, each only once the transform pool is idle
//!   (no request waiting, a worker left free for requests:
//!   [`crate::media::pool::Pool::idle_turn`]);
//! - each result is made by the download's own pipeline ([`crate::fetch::derived`]:
//!   the key's owner node in a cluster, or plan and obtain here), so it lands under the
//!   cache key the download computes, once, whoever asks first.
//!
//! Every outcome is counted in `filegate_eager_total{result}`; a failure is logged,
//! never surfaced to the uploader.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::media::sniff::sniff;
use crate::media::thumbnail::check_image_format;
use crate::metrics::Metrics;
use crate::storage::keys::ObjectKey;

/// An upload waiting for its eager results.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The app (the key's first segment).
    pub app_id: String,
    /// The uploaded object.
    pub key: ObjectKey,
}

/// Where completed uploads are handed in (shared by every request); the worker takes
/// them out.
pub struct EagerQueue {
    tx: mpsc::Sender<Upload>,
    rx: Mutex<Option<mpsc::Receiver<Upload>>>,
    metrics: Arc<Metrics>,
}

impl EagerQueue {
    /// A queue of at most `bound` uploads (at least 1).
    pub fn new(bound: usize, metrics: Arc<Metrics>) -> EagerQueue {
        let (tx, rx) = mpsc::channel(bound.max(1));
        EagerQueue {
            tx,
            rx: Mutex::new(Some(rx)),
            metrics,
        }
    }

    /// The receiving end, once (the worker takes it when it starts).
    pub(super) fn take_receiver(&self) -> Option<mpsc::Receiver<Upload>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Sets the depth gauge to what the queue holds now. Read from the channel, not
    /// counted up and down: a count raced (a send between the worker's receive and its
    /// decrement showed one above the bound).
    pub fn note_depth(&self) {
        let held = self.tx.max_capacity().saturating_sub(self.tx.capacity());
        self.metrics
            .eager_queue_depth
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    fn count(&self, result: &str, n: usize) {
        self.metrics
            .eager_total
            .with_label_values(&[result])
            .inc_by(n as u64);
    }

    /// An upload of `key` completed; `head` is the beginning of its bytes (at least
    /// [`crate::media::sniff::SNIFF_BYTES`] when the object is that long). Queues its eager results if its
    /// app lists any and it is an image (sniffed as the thumbnail path does); never
    /// waits: a full queue drops them (counted).
    pub fn submit(&self, config: &Config, key: &ObjectKey, head: &[u8]) {
        let app_id = key.as_str().split('/').next().unwrap_or("");
        let Some(app) = config.apps.get(app_id) else {
            return;
        };
        let n = app.eager.len();
        if n == 0 {
            return;
        }
        // Only what the download routes can name is worth making: avatars and chat
        // files, never `_derived/` copies.
        let downloadable = key.is_avatar_of(app_id) || key.is_chat_of(app_id);
        if !downloadable || check_image_format(sniff(head)).is_err() {
            self.count("skipped", n);
            return;
        }
        let upload = Upload {
            app_id: app_id.to_string(),
            key: key.clone(),
        };
        let sent = self.tx.try_send(upload);
        self.note_depth();
        match sent {
            Ok(()) => {}
            Err(e) => {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the eager queue is full",
                    mpsc::error::TrySendError::Closed(_) => "no eager worker runs",
                };
                log::info!("eager: {key}: {why}; its {n} results are dropped");
                self.count("dropped", n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(eager: &str) -> Config {
        let cfg = Config::from_yaml(&format!(
            "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    eager: {eager}\n  plain:\n    secrets: [0123456789abcdef]\n"
        ))
        .unwrap();
        cfg.validate().unwrap();
        cfg
    }

    fn count(m: &Metrics, result: &str) -> u64 {
        m.eager_total.with_label_values(&[result]).get()
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];

    #[test]
    fn submit_queues_images_of_eager_apps_and_drops_past_the_bound() {
        let metrics = Arc::new(Metrics::new());
        let queue = EagerQueue::new(2, metrics.clone());
        let cfg = config("[{image_type: 2, w: 200}, {image_type: 2, w: 100}]");
        let key = |n: u32| ObjectKey::parse(&format!("demo/avatar/user/1/a{n}.jpg")).unwrap();
        // Not an image, not a downloadable key: skipped, one count per entry.
        queue.submit(&cfg, &key(0), b"hello, world");
        queue.submit(
            &cfg,
            &ObjectKey::parse("demo/_derived/ab.jpg").unwrap(),
            JPEG,
        );
        assert_eq!(count(&metrics, "skipped"), 4);
        // Apps without eager entries, or unknown ones, are not counted at all.
        queue.submit(
            &cfg,
            &ObjectKey::parse("plain/avatar/user/1/a.jpg").unwrap(),
            JPEG,
        );
        queue.submit(
            &cfg,
            &ObjectKey::parse("nope/avatar/user/1/a.jpg").unwrap(),
            JPEG,
        );
        assert_eq!(count(&metrics, "skipped"), 4);
        for n in 1..=3 {
            queue.submit(&cfg, &key(n), JPEG);
        }
        assert_eq!(metrics.eager_queue_depth.get(), 2, "the bound holds");
        assert_eq!(
            count(&metrics, "dropped"),
            2,
            "the third upload's two results"
        );
        let mut rx = queue.take_receiver().unwrap();
        assert_eq!(rx.try_recv().unwrap().key, key(1));
        assert!(queue.take_receiver().is_none(), "one worker only");
    }
}
