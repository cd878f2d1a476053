//! The transform pool: at most `media.workers` transforms run at once, each whole on
//! one blocking thread (libvips images are not `Send`, and CPU work must stay off the
//! async workers); at most `media.queue` wait for a turn, and past that the caller
//! gets 503 with `Retry-After` at once instead of queueing without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::media::limits::{too_slow, Deadline};

/// A bounded pool of blocking workers with a bounded wait queue.
pub struct Pool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    retry_after: Duration,
    timeout: Duration,
    depth: IntGauge,
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
        Pool {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            retry_after,
            timeout,
            depth,
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
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(deadline)
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(ApiError::internal(format!("transform failed: {join}"))),
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
