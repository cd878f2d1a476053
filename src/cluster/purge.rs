//! Purges across the cluster (SPEC §13): a purge asked of any node is sent to every
//! other node as `POST /_cluster/purge` on its public listener, signed like a fill
//! ([`super::peer_auth`]); each node purges its own tiers and its short-lived copies
//! and answers how many entries it removed. A node that cannot be reached is named in
//! the answer, so the operator knows to ask again.

use base64::Engine;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::cache::purge::PurgeTarget;
use crate::clock::now_secs;
use crate::cluster::fill::B64;
use crate::cluster::peer_auth::{self, Purpose, Target, AUTH_HEADER, SPEC_HEADER};
use crate::cluster::Cluster;

/// The path of purges between nodes.
pub const PURGE_PATH: &str = "/_cluster/purge";

/// What a purge between nodes carries (base64url JSON in [`SPEC_HEADER`]). Tagged, so
/// a fill's signed spec can never be read as a purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PurgeSpec {
    /// A purge of `key` or `prefix` (exactly one).
    Purge {
        /// One object key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// A key prefix ending in `/`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
}

impl PurgeSpec {
    /// The spec of `target`.
    pub fn of(target: &PurgeTarget) -> PurgeSpec {
        match target {
            PurgeTarget::Key(k) => PurgeSpec::Purge {
                key: Some(k.as_str().to_string()),
                prefix: None,
            },
            PurgeTarget::Prefix(p) => PurgeSpec::Purge {
                key: None,
                prefix: Some(p.clone()),
            },
        }
    }

    /// The header value.
    pub fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The target a header value names, checked as the admin route checks it.
    pub fn decode(value: &str) -> Option<PurgeTarget> {
        let raw = B64.decode(value).ok()?;
        let PurgeSpec::Purge { key, prefix } = serde_json::from_slice(&raw).ok()?;
        PurgeTarget::parse(key.as_deref(), prefix.as_deref()).ok()
    }
}

/// What one other node answered a purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPurge {
    /// It removed this many entries.
    Purged(usize),
    /// It could not be reached, or did not answer as a node should (logged).
    Unreachable,
}

#[derive(Deserialize)]
struct Answer {
    data: Option<AnswerData>,
}

#[derive(Deserialize)]
struct AnswerData {
    purged: usize,
}

impl Cluster {
    /// Sends the purge of `target` to every other node, all at once; each answer
    /// waits at most `cluster.peer_timeout`.
    pub async fn purge_peers(&self, target: &PurgeTarget) -> Vec<(String, PeerPurge)> {
        let spec = PurgeSpec::of(target).encode();
        let asks = self.peers().iter().map(|(url, addr)| {
            let spec = spec.clone();
            async move {
                let target = Target {
                    purpose: Purpose::Purge,
                    node: *addr,
                };
                let auth = peer_auth::sign(&self.secret, target, now_secs(), &spec);
                let request = self
                    .client
                    .post(format!("http://{addr}{PURGE_PATH}"))
                    .header(SPEC_HEADER, &spec)
                    .header(AUTH_HEADER, auth)
                    .send();
                let answer = match tokio::time::timeout(self.peer_timeout, request).await {
                    Ok(Ok(resp)) if resp.status() == reqwest::StatusCode::OK => {
                        let body = tokio::time::timeout(self.peer_timeout, resp.bytes()).await;
                        match body.map(|b| b.map(|b| serde_json::from_slice::<Answer>(&b))) {
                            Ok(Ok(Ok(Answer {
                                data: Some(AnswerData { purged }),
                            }))) => Ok(purged),
                            _ => Err("an answer that is not a purge's".to_string()),
                        }
                    }
                    Ok(Ok(resp)) => Err(format!("it answered {}", resp.status().as_u16())),
                    Ok(Err(e)) => Err(e.without_url().to_string()),
                    Err(_) => Err("no answer in time".to_string()),
                };
                let outcome = match answer {
                    Ok(n) => PeerPurge::Purged(n),
                    Err(why) => {
                        log::warn!(
                            "cluster: purge not done on {url} ({why}): purge again once it is back"
                        );
                        PeerPurge::Unreachable
                    }
                };
                (url.clone(), outcome)
            }
        });
        join_all(asks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_are_checked() {
        let key = PurgeTarget::parse(Some("demo/avatar/user/1/a.jpg"), None).unwrap();
        assert_eq!(PurgeSpec::decode(&PurgeSpec::of(&key).encode()), Some(key));
        let prefix = PurgeTarget::parse(None, Some("demo/chat/")).unwrap();
        assert_eq!(
            PurgeSpec::decode(&PurgeSpec::of(&prefix).encode()),
            Some(prefix)
        );
        // A fill's spec is not a purge.
        let fill = crate::cluster::fill::FillSpec::Original {
            app: "demo".into(),
            key: "demo/avatar/user/1/a.jpg".into(),
        };
        assert_eq!(PurgeSpec::decode(&fill.encode()), None);
        // Nor is a purge of something the admin route would refuse.
        let bad = B64.encode(br#"{"kind":"purge","prefix":"demo"}"#);
        assert_eq!(PurgeSpec::decode(&bad), None);
    }
}
