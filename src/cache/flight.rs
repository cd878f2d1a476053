//! Single flight: concurrent misses of one key share one fill (one store GET, or one
//! transform). The fill runs in its own task, so a client that leaves does not stop
//! it; every waiting client streams from it as its bytes arrive. A fill that fails
//! midway ends every reader with an error (their clients see a cut body, never a
//! complete one), and is forgotten at once, so the next request fetches again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::key::CacheKey;
use crate::error::ApiError;
use crate::storage::ObjectMeta;

/// How a fill began.
#[derive(Debug, Clone)]
pub enum FillHead {
    /// The body is coming: its metadata.
    Body(Arc<ObjectMeta>),
    /// The object is larger than `cache.max_object`: each client streams it from the
    /// store itself, uncached.
    TooLarge(Arc<ObjectMeta>),
    /// The fill failed before any byte (404, store failure).
    Failed(ApiError),
}

#[derive(Default)]
struct State {
    head: Option<FillHead>,
    chunks: Vec<Bytes>,
    received: u64,
    /// `Some(Ok)` once the body is whole; `Some(Err)` if it failed midway.
    end: Option<Result<(), ApiError>>,
}

/// One fill in progress, shared by its readers.
pub struct Flight {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Flight {
    fn new() -> Arc<Flight> {
        Arc::new(Flight {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain pushes).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Publishes how the fill began.
    pub fn begin(&self, head: FillHead) {
        self.lock().head = Some(head);
        self.notify();
    }

    /// Appends a piece of the body.
    pub fn push(&self, chunk: Bytes) {
        {
            let mut s = self.lock();
            s.received += chunk.len() as u64;
            s.chunks.push(chunk);
        }
        self.notify();
    }

    /// Ends the fill (`Ok`: the body is whole).
    pub fn finish(&self, result: Result<(), ApiError>) {
        {
            let mut s = self.lock();
            if s.head.is_none() {
                s.head = Some(FillHead::Failed(match &result {
                    Ok(()) => ApiError::internal("a fill ended before it began"),
                    Err(e) => e.clone(),
                }));
            }
            s.end = Some(result);
        }
        self.notify();
    }

    /// The whole body, once complete (for callers that need it in one piece).
    pub fn chunks(&self) -> Vec<Bytes> {
        self.lock().chunks.clone()
    }

    /// Waits for the fill's head.
    pub async fn head(self: &Arc<Self>) -> FillHead {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(h) = self.lock().head.clone() {
                return h;
            }
            if rx.changed().await.is_err() {
                return FillHead::Failed(ApiError::internal("the fill went away"));
            }
        }
    }

    /// A reader of the body from its first byte.
    pub fn reader(self: &Arc<Self>) -> FlightReader {
        FlightReader {
            flight: self.clone(),
            rx: self.changed.subscribe(),
            next: 0,
        }
    }
}

/// Reads a fill's body as it arrives.
pub struct FlightReader {
    flight: Arc<Flight>,
    rx: watch::Receiver<u64>,
    next: usize,
}

impl FlightReader {
    /// The next piece: `Ok(None)` at the end of a whole body, `Err` when the fill
    /// failed midway.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            {
                let s = self.flight.lock();
                if let Some(chunk) = s.chunks.get(self.next) {
                    self.next += 1;
                    return Ok(Some(chunk.clone()));
                }
                match &s.end {
                    Some(Ok(())) => return Ok(None),
                    Some(Err(e)) => return Err(e.clone()),
                    None => {}
                }
            }
            if self.rx.changed().await.is_err() {
                return Err(ApiError::internal("the fill went away"));
            }
        }
    }
}

/// The fills in progress, by key.
#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<CacheKey, Arc<Flight>>>,
}

/// Whether a caller joined a fill or must run it.
pub enum Joined {
    /// Another caller runs it: read from it.
    Follower(Arc<Flight>),
    /// This caller runs it (and must [`Flights::done`] when it ends).
    Leader(Arc<Flight>),
}

impl Flights {
    /// Joins the fill of `key`, or starts one.
    pub fn join(&self, key: CacheKey) -> Joined {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(&key) {
            return Joined::Follower(f.clone());
        }
        let f = Flight::new();
        map.insert(key, f.clone());
        Joined::Leader(f)
    }

    /// Forgets the fill of `key` (it ended): the next miss starts a new one.
    pub fn done(&self, key: &CacheKey) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Fills in progress.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey {
            digest: [n; 32],
            part: 0,
        }
    }

    #[tokio::test]
    async fn followers_stream_what_the_leader_pushes() {
        let flights = Flights::default();
        let Joined::Leader(f) = flights.join(key(1)) else {
            panic!("first caller leads")
        };
        let Joined::Follower(g) = flights.join(key(1)) else {
            panic!("second caller follows")
        };
        let mut r = g.reader();
        let meta = Arc::new(ObjectMeta {
            size: 6,
            etag: "\"e\"".into(),
            content_type: "x/y".into(),
            original_name: None,
            last_modified: None,
        });
        f.begin(FillHead::Body(meta));
        f.push(Bytes::from_static(b"abc"));
        assert_eq!(r.next().await.unwrap().unwrap(), "abc");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = r.next().await.unwrap() {
                got.extend_from_slice(&c);
            }
            got
        });
        f.push(Bytes::from_static(b"def"));
        f.finish(Ok(()));
        flights.done(&key(1));
        assert_eq!(reader.await.unwrap(), b"def");
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(key(1)), Joined::Leader(_)));
    }

    #[tokio::test]
    async fn a_failed_fill_ends_every_reader_with_an_error() {
        let flights = Flights::default();
        let Joined::Leader(f) = flights.join(key(2)) else {
            panic!()
        };
        let mut r = f.reader();
        f.push(Bytes::from_static(b"partial"));
        f.finish(Err(ApiError::store_failed("died mid-body")));
        assert!(r.next().await.unwrap().is_some());
        assert!(r.next().await.is_err());
    }
}
