//! Requests between nodes are signed with `cluster.secret`: HMAC-SHA256 over a fixed
//! label, what the request is (a fill or a purge), the node it is for, the time, a
//! random nonce and the request's spec. A node refuses a request whose signature
//! fails (signed for another node or another kind of request included), whose time is
//! more than [`MAX_SKEW_SECS`] away, or whose nonce it has seen (a replay); a client
//! without the secret can never pose as a peer, and a captured request cannot be
//! replayed to another node.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The header carrying `<time>.<nonce>.<signature>`.
pub const AUTH_HEADER: &str = "x-filegate-peer";
/// The header carrying the request's spec (base64url JSON).
pub const SPEC_HEADER: &str = "x-filegate-fill";
/// Largest clock difference accepted between nodes.
pub const MAX_SKEW_SECS: u64 = 30;
/// Most nonces remembered at once: a node asked more often than this within the
/// window refuses (503) rather than forget a nonce that could still be replayed.
pub const MAX_NONCES: usize = 1_000_000;

/// What a signed request asks for: part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `GET /_cluster/fill`.
    Fill,
    /// `POST /_cluster/purge`.
    Purge,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Fill => b"fill",
            Purpose::Purge => b"purge",
        }
    }
}

/// Why a peer request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or malformed headers.
    Malformed,
    /// The signature is not the cluster's.
    BadSignature,
    /// Too old or too far in the future.
    Stale,
    /// A nonce seen before.
    Replayed,
    /// More signed requests within the window than nonces can be remembered.
    Busy,
}

impl Refusal {
    /// The message answered.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "peer request: malformed signature headers",
            Refusal::BadSignature => "peer request: the signature is not this cluster's",
            Refusal::Stale => "peer request: signed too long ago (or clocks disagree)",
            Refusal::Replayed => "peer request: replayed",
            Refusal::Busy => "peer request: too many in the signature window; try again",
        }
    }
}

/// Who and what a request is for.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// A fill or a purge.
    pub purpose: Purpose,
    /// The node asked (its address as `cluster.peers` and `cluster.self` name it).
    pub node: SocketAddr,
}

fn mac(secret: &Secret, target: Target, time: u64, nonce: &str, spec: &str) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut m = match HmacSha256::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(b"filegate-peer-request\n");
    m.update(target.purpose.label());
    m.update(b"\n");
    m.update(target.node.to_string().as_bytes());
    m.update(b"\n");
    m.update(time.to_string().as_bytes());
    m.update(b"\n");
    m.update(nonce.as_bytes());
    m.update(b"\n");
    m.update(spec.as_bytes());
    m
}

/// The value of [`AUTH_HEADER`] for `spec` sent to `target` at `time`.
pub fn sign(secret: &Secret, target: Target, time: u64, spec: &str) -> String {
    let nonce = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let sig = mac(secret, target, time, &nonce, spec)
        .finalize()
        .into_bytes();
    format!("{time}.{nonce}.{}", B64.encode(sig))
}

/// Remembers every nonce for as long as its signature can be fresh, and never
/// forgets one sooner: when [`MAX_NONCES`] are remembered, new requests are refused
/// (`Busy`) until old ones age out.
pub struct Nonces {
    window: Mutex<NonceWindow>,
    cap: usize,
}

#[derive(Default)]
struct NonceWindow {
    seen: HashSet<String>,
    /// (last second the nonce's signature is fresh, nonce), oldest first.
    by_expiry: BTreeSet<(u64, String)>,
}

impl Default for Nonces {
    fn default() -> Self {
        Nonces::with_capacity(MAX_NONCES)
    }
}

impl Nonces {
    /// A store of at most `cap` nonces.
    pub fn with_capacity(cap: usize) -> Self {
        Nonces {
            window: Mutex::new(NonceWindow::default()),
            cap,
        }
    }

    /// Remembers `nonce`, signed at `time`, unless it was seen (`Replayed`) or the
    /// store is full of nonces still fresh at `now` (`Busy`).
    fn remember(&self, nonce: &str, time: u64, now: u64) -> Result<(), Refusal> {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((expiry, _)) = window.by_expiry.first() {
            if *expiry >= now {
                break;
            }
            if let Some((_, old)) = window.by_expiry.pop_first() {
                window.seen.remove(&old);
            }
        }
        if window.seen.contains(nonce) {
            return Err(Refusal::Replayed);
        }
        if window.seen.len() >= self.cap {
            return Err(Refusal::Busy);
        }
        window.seen.insert(nonce.to_string());
        window
            .by_expiry
            .insert((time + MAX_SKEW_SECS, nonce.to_string()));
        Ok(())
    }
}

/// Checks `auth` (the [`AUTH_HEADER`] value) for `spec`, sent to `target` (this node),
/// at `now`.
pub fn verify(
    secret: &Secret,
    target: Target,
    auth: &str,
    spec: &str,
    now: u64,
    nonces: &Nonces,
) -> Result<(), Refusal> {
    let mut parts = auth.splitn(3, '.');
    let (Some(time), Some(nonce), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed);
    };
    let time: u64 = time.parse().map_err(|_| Refusal::Malformed)?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::Malformed);
    }
    let sig = B64.decode(sig).map_err(|_| Refusal::Malformed)?;
    mac(secret, target, time, nonce, spec)
        .verify_slice(&sig)
        .map_err(|_| Refusal::BadSignature)?;
    if time.abs_diff(now) > MAX_SKEW_SECS {
        return Err(Refusal::Stale);
    }
    // Only after the signature: a forger cannot fill the nonce store.
    nonces.remember(nonce, time, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_for(port: u16) -> Target {
        Target {
            purpose: Purpose::Fill,
            node: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn signed_requests_verify_once() {
        let secret = Secret::new("cluster-secret-0123456789");
        let nonces = Nonces::default();
        let me = fill_for(8080);
        let auth = sign(&secret, me, 1000, "spec");
        assert_eq!(verify(&secret, me, &auth, "spec", 1010, &nonces), Ok(()));
        assert_eq!(
            verify(&secret, me, &auth, "spec", 1010, &nonces),
            Err(Refusal::Replayed)
        );
        let other = sign(&secret, me, 1000, "spec");
        assert_eq!(
            verify(&secret, me, &other, "another spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        let forged = sign(&Secret::new("not-the-cluster-secret"), me, 1000, "spec");
        assert_eq!(
            verify(&secret, me, &forged, "spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        let old = sign(&secret, me, 1000, "spec");
        assert_eq!(
            verify(&secret, me, &old, "spec", 1100, &nonces),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(&secret, me, "nonsense", "spec", 1000, &nonces),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn a_request_is_good_only_for_its_node_and_purpose() {
        let secret = Secret::new("cluster-secret-0123456789");
        let nonces = Nonces::default();
        let auth = sign(&secret, fill_for(8080), 1000, "spec");
        assert_eq!(
            verify(&secret, fill_for(8081), &auth, "spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        let purge = Target {
            purpose: Purpose::Purge,
            ..fill_for(8080)
        };
        assert_eq!(
            verify(&secret, purge, &auth, "spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(&secret, fill_for(8080), &auth, "spec", 1000, &nonces),
            Ok(())
        );
    }

    #[test]
    fn a_full_nonce_store_refuses_rather_than_forgets() {
        let secret = Secret::new("cluster-secret-0123456789");
        let nonces = Nonces::with_capacity(2);
        let me = fill_for(8080);
        let first = sign(&secret, me, 1000, "s");
        assert_eq!(verify(&secret, me, &first, "s", 1000, &nonces), Ok(()));
        let second = sign(&secret, me, 1000, "s");
        assert_eq!(verify(&secret, me, &second, "s", 1001, &nonces), Ok(()));
        let third = sign(&secret, me, 1002, "s");
        assert_eq!(
            verify(&secret, me, &third, "s", 1002, &nonces),
            Err(Refusal::Busy)
        );
        // The first is still remembered, however full the store was.
        assert_eq!(
            verify(&secret, me, &first, "s", 1020, &nonces),
            Err(Refusal::Replayed)
        );
        // Once the first two are past the window, room again.
        assert_eq!(verify(&secret, me, &third, "s", 1031, &nonces), Ok(()));
    }
}
