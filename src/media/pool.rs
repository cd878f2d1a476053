//! The transform pool: at most `media.workers` transforms run at once, each whole on
//! one of `media.workers` long-lived threads (libvips images are not `Send`, and CPU
//! work must stay off the async workers); at most `media.queue` wait for a turn, and
//! past that the caller gets 503 with `Retry-After` at once instead of queueing
//! without bound.
//!
//! Own threads rather than tokio's blocking pool: that pool grows to dozens of threads
//! under load (file I/O shares it), and every thread a transform ran on keeps its own
//! malloc arena, libvips buffers and colour transforms; measured on the bench's cold
//! rows, RSS grew with the thread count (1 GiB after the run). A fixed set of threads
//! keeps those per-thread caches few and warm.
//!
//! Background work (eager derivation) never queues here ahead of a request: it takes
//! an [`IdleTurn`] first, which waits until no request waits and a worker stays free
//! for requests, and lets one background job run at a time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::media::job_memory;
use crate::media::limits::{too_slow, Deadline};

/// A job as the worker threads run it.
type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of worker threads with a bounded wait queue.
pub struct Pool {
    /// Jobs for the worker threads (one at most per permit; they exit when it drops).
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    retry_after: Duration,
    timeout: Duration,
    depth: IntGauge,
    workers: usize,
    /// One background job at a time.
    background: Arc<Semaphore>,
    /// Times the idle pool handed memory back (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    handbacks: Arc<AtomicUsize>,
}

/// How long the pool stays idle (no job running, none arriving) before glibc's freed
/// memory and the kept picture buffers go back to the system ([`job_memory::give_back`]):
/// while jobs keep coming, what one freed the next reuses (a 12 MP rendition's 70 MB of
/// buffers, without faulting their pages in again: the kernel's share of the
/// rendition row went from 8.9% to 3.2%, docs/decisions.md).
const IDLE_BEFORE_TRIM: Duration = Duration::from_millis(1000);

/// How often a background job waiting for an idle pool looks again.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// The turn of one background job: held for as long as that job runs. It holds no
/// worker (the job's transform takes one as a request's does), only the background
/// lane, and it was granted while the pool was idle.
pub struct IdleTurn {
    _lane: OwnedSemaphorePermit,
}

/// Decrements the wait count however the wait ends (granted, or the request gone).
struct Waiting<'a>(&'a Pool);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let now = self.0.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        self.0.depth.set(now as i64);
    }
}

impl Pool {
    /// A pool of `workers` (at least 1) with room for `queue` waiting jobs; each job
    /// may run `timeout`. `depth` is the queue-depth gauge.
    pub fn new(
        workers: usize,
        queue: usize,
        retry_after: Duration,
        timeout: Duration,
        depth: IntGauge,
    ) -> Pool {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let inbox = Arc::new(Mutex::new(inbox));
        // Whether a job ran since glibc's memory was last handed back.
        let dirty = Arc::new(AtomicBool::new(false));
        // Jobs running now.
        let running = Arc::new(AtomicUsize::new(0));
        let handbacks = Arc::new(AtomicUsize::new(0));
        for i in 0..workers.max(1) {
            let inbox = inbox.clone();
            let (dirty, running) = (dirty.clone(), running.clone());
            let handbacks = handbacks.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("filegate-media-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job; its
                    // holder is the one that trims (every arena at once) when the
                    // pool has been idle a while since a job ran.
                    let next = {
                        let rx = match inbox.lock() {
                            Ok(rx) => rx,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        loop {
                            match rx.recv_timeout(IDLE_BEFORE_TRIM) {
                                Ok(job) => break Some(job),
                                Err(mpsc::RecvTimeoutError::Timeout) => {
                                    // Another worker's job still running: not idle.
                                    if running.load(Ordering::Acquire) == 0
                                        && dirty.swap(false, Ordering::AcqRel)
                                    {
                                        job_memory::give_back();
                                        handbacks.fetch_add(1, Ordering::AcqRel);
                                    }
                                }
                                Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                            }
                        }
                    };
                    let Some(job) = next else { return };
                    running.fetch_add(1, Ordering::AcqRel);
                    job();
                    dirty.store(true, Ordering::Release);
                    running.fetch_sub(1, Ordering::AcqRel);
                });
            if let Err(e) = spawned {
                // Fewer threads than permits only makes jobs wait for one another.
                log::error!("cannot start transform worker {i}: {e}");
            }
        }
        Pool {
            jobs,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            retry_after,
            timeout,
            depth,
            workers: workers.max(1),
            background: Arc::new(Semaphore::new(1)),
            handbacks,
        }
    }

    /// Whether background work may start now: no transform waits for a worker, and a
    /// worker would stay free for the next request (with a single worker: it is free).
    pub fn is_idle(&self) -> bool {
        let keep_free = usize::from(self.workers > 1);
        self.waiting.load(Ordering::Acquire) == 0 && self.permits.available_permits() > keep_free
    }

    /// Waits for the background lane (one background job at a time), then for the pool
    /// to be idle ([`Pool::is_idle`], looked at every 10 ms: requests never queue
    /// behind this wait); `None` when that took longer than `patience`.
    pub async fn idle_turn(&self, patience: Duration) -> Option<IdleTurn> {
        let deadline = Instant::now() + patience;
        let lane = tokio::time::timeout(patience, self.background.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        loop {
            if self.is_idle() {
                return Some(IdleTurn { _lane: lane });
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    }

    /// Runs `job` on a worker: 503 when the queue is full, 422 when the job runs past
    /// the timeout (the job also gets the deadline, to stop early on its own). A job
    /// keeps its worker until it returns, even if the caller stopped waiting, so the
    /// pool never runs more than its size.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Deadline) -> Result<T, ApiError> + Send + 'static,
    {
        let permit =
            match self.permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    let before = self.waiting.fetch_add(1, Ordering::AcqRel);
                    let guard = Waiting(self);
                    if before >= self.queue {
                        drop(guard);
                        return Err(ApiError::overloaded(
                            self.retry_after.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
                        ));
                    }
                    self.depth.set(before as i64 + 1);
                    let permit =
                        self.permits.clone().acquire_owned().await.map_err(|e| {
                            ApiError::internal(format!("transform pool closed: {e}"))
                        })?;
                    drop(guard);
                    permit
                }
            };
        let deadline = Deadline(Instant::now() + self.timeout);
        let (done, result) = tokio::sync::oneshot::channel();
        let work: Job = Box::new(move || {
            let _permit = permit;
            // A panicking transform fails its request, not the worker thread.
            let out = catch_unwind(AssertUnwindSafe(|| job(deadline)))
                .unwrap_or_else(|_| Err(ApiError::internal("transform failed: it panicked")));
            let _ = done.send(out);
        });
        if self.jobs.send(work).is_err() {
            return Err(ApiError::internal("the transform workers are gone"));
        }
        match tokio::time::timeout(self.timeout, result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiError::internal("transform failed: its worker stopped")),
            Err(_) => Err(too_slow()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize, timeout_ms: u64) -> Arc<Pool> {
        Arc::new(Pool::new(
            workers,
            queue,
            Duration::from_secs(3),
            Duration::from_millis(timeout_ms),
            IntGauge::new("depth", "depth").unwrap(),
        ))
    }

    /// A job that runs until the sender sends (or is dropped).
    fn held_job(
        p: &Arc<Pool>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), ApiError>>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let p = p.clone();
        let job = tokio::spawn(async move {
            p.run(move |_| {
                let _ = held.recv();
                Ok(())
            })
            .await
        });
        (release, job)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_goes_back_only_once_no_job_runs() {
        let p = pool(2, 4, 10_000);
        p.run(|_| Ok(())).await.unwrap();
        // A job still running on the other worker: past the idle wait, nothing yet.
        let (release, long) = held_job(&p);
        tokio::time::sleep(IDLE_BEFORE_TRIM + Duration::from_millis(500)).await;
        assert_eq!(p.handbacks.load(Ordering::Acquire), 0, "while a job ran");
        release.send(()).unwrap();
        long.await.unwrap().unwrap();
        // Idle now: once within a few idle waits, and once only.
        let deadline = Instant::now() + IDLE_BEFORE_TRIM * 5;
        while p.handbacks.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(IDLE_BEFORE_TRIM * 2).await;
        assert_eq!(
            p.handbacks.load(Ordering::Acquire),
            1,
            "once the pool went idle"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_is_503_with_retry_after() {
        let p = pool(1, 1, 5_000);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (p, rx) = (p.clone(), rx.clone());
            running.push(tokio::spawn(async move {
                p.run(move |_| {
                    let _ = rx.lock().map(|r| r.recv());
                    Ok(1)
                })
                .await
            }));
        }
        // One job runs and one waits: the third finds the queue full.
        while p.waiting.load(Ordering::Acquire) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let err = p.run(|_| Ok(0)).await.unwrap_err();
        assert_eq!(err.status(), 503);
        assert_eq!(err.retry_after(), Some(3));
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        for r in running {
            assert_eq!(r.await.unwrap().unwrap(), 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_turns_wait_for_an_idle_pool_one_at_a_time() {
        let p = pool(2, 4, 5_000);
        let turn = p.idle_turn(Duration::from_millis(50)).await;
        assert!(turn.is_some(), "an idle pool grants a turn");
        // One background job at a time.
        assert!(p.idle_turn(Duration::from_millis(30)).await.is_none());
        drop(turn);
        // One request transform running leaves one worker free: that one is kept for
        // requests, so no turn.
        let (tx, busy) = held_job(&p);
        while p.permits.available_permits() == 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!p.is_idle());
        assert!(p.idle_turn(Duration::from_millis(50)).await.is_none());
        // Once it ends, a waiting turn is granted.
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.idle_turn(Duration::from_secs(5)).await.is_some() })
        };
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(waiting.await.unwrap());
        // A single worker is lent to background work whenever it is free.
        let single = pool(1, 1, 5_000);
        assert!(single.idle_turn(Duration::from_millis(50)).await.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_job_is_422() {
        let p = pool(1, 1, 50);
        // The pool stops waiting at the timeout, whatever the job does.
        let err = p
            .run(|_| {
                std::thread::sleep(Duration::from_millis(500));
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 422);
        // A job that polls its deadline ends as a 422 too (it, or the pool, gives up).
        let err = p.run(|deadline| {
            std::thread::sleep(Duration::from_millis(60));
            deadline.check()
        });
        assert_eq!(err.await.unwrap_err().status(), 422);
    }
}
