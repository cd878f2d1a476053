//! What is left of a refused upload's body. Closing a connection with unread bytes in
//! the kernel's receive buffer sends a reset, and a client still sending its body then
//! loses the answer (a 412 for a replayed grant arrives as "connection reset"). So a
//! refusal first reads the rest, within a bound, as nginx's lingering close does; a
//! body past the bound is cut and the connection closed.

use std::time::Duration;

use pingora_proxy::Session;

/// Bytes of a refused body read and thrown away before the answer.
const DISCARD_LIMIT: usize = 1024 * 1024;
/// Time given to the client to finish sending them.
const DISCARD_TIME: Duration = Duration::from_secs(2);

/// Reads and drops the rest of the request body, at most [`DISCARD_LIMIT`] bytes within
/// [`DISCARD_TIME`]. Returns whether the body ended (the connection can be reused);
/// otherwise keep-alive is turned off, so the connection closes after the answer.
pub async fn discard_unread_body(session: &mut Session) -> bool {
    let read_all = async {
        let mut read = 0usize;
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if read > DISCARD_LIMIT {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    };
    let ended = tokio::time::timeout(DISCARD_TIME, read_all)
        .await
        .unwrap_or(false);
    if !ended {
        session.set_keepalive(None);
    }
    ended
}
