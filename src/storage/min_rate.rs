//! Cutting off store bodies that arrive too slowly. Per-read timeouts do not catch a
//! store that drips a byte every few seconds; this measures only the time spent
//! waiting on the store (not on a slow client, whose backpressure pauses reads) and
//! fails the body as a timeout once that time passes a grace period and the bytes
//! received fall below the minimum rate.

use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;

use crate::storage::{ByteStream, StoreError};

struct Progress {
    inner: ByteStream,
    waited: Duration,
    bytes: u64,
    done: bool,
}

/// Wraps `body`, failing it when it arrives slower than `min_bytes_per_sec` after
/// `grace` of cumulative waiting.
pub fn enforce_min_rate(body: ByteStream, min_bytes_per_sec: u64, grace: Duration) -> ByteStream {
    let state = Progress {
        inner: body,
        waited: Duration::ZERO,
        bytes: 0,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        let started = Instant::now();
        let item = st.inner.next().await;
        st.waited += started.elapsed();
        match item {
            None => None,
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            Some(Ok(chunk)) => {
                st.bytes += chunk.len() as u64;
                let floor = min_bytes_per_sec as f64 * st.waited.as_secs_f64();
                if st.waited > grace && (st.bytes as f64) < floor {
                    st.done = true;
                    let err = StoreError::Timeout(format!(
                        "store body too slow: {} bytes in {:.1}s of waiting (minimum {min_bytes_per_sec}/s)",
                        st.bytes,
                        st.waited.as_secs_f64()
                    ));
                    return Some((Err(err), st));
                }
                Some((Ok(chunk), st))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn drip(chunks: usize, gap: Duration) -> ByteStream {
        Box::pin(futures::stream::unfold(0, move |i| async move {
            if i == chunks {
                return None;
            }
            tokio::time::sleep(gap).await;
            Some((Ok(Bytes::from_static(b"x")), i + 1))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_drip_is_cut_off_a_fast_body_is_not() {
        let mut slow = enforce_min_rate(
            drip(100, Duration::from_millis(500)),
            1024,
            Duration::from_secs(2),
        );
        let mut got = 0;
        let mut failed = false;
        while let Some(item) = slow.next().await {
            match item {
                Ok(_) => got += 1,
                Err(StoreError::Timeout(_)) => failed = true,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(failed && got < 10, "got {got} chunks before the cut");
        let mut fast = enforce_min_rate(drip(100, Duration::ZERO), 1024, Duration::from_secs(2));
        let mut n = 0;
        while let Some(item) = fast.next().await {
            item.unwrap();
            n += 1;
        }
        assert_eq!(n, 100);
    }
}
