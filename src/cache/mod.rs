//! The edge cache (SPEC §6): one engine for originals and derived results, in memory
//! and on disk.
//!
//! - [`tiers`]: the two tiers on `foyer`, and the one writer that keeps the disk
//!   tier's promise across restarts; [`foyer_metrics`]: foyer's metrics and drops.
//! - [`key`]: keys scoped by app and object key, plus the source's ETag and the
//!   normalised transform for derived results; [`entry`]: what is stored (version
//!   records, body heads, body pieces, derivation lists) and its checksummed form.
//! - [`freshness`]: when a version is fresh, stale or expired.
//! - [`original`]: originals (hit, revalidation, stale-if-error, one fill however many
//!   ask); [`derived`]: derived results (the source's version, one make however many
//!   ask); [`flight`]: single flight, readers streaming from a fill as it arrives.
//! - [`purge`]: purges by key or prefix on this node, counted in both tiers;
//!   [`purge_rules`]: the rules they leave, kept across restarts.
//! - [`status`]: `X-Cache-Status` and the metric labels; [`body`]: a body to serve.
//! - [`edge`]: [`EdgeCache`] itself (opening, closing, the version records and bodies
//!   the parts above share).
//!
//! Bodies are keyed by version, so a body of an unchanged version stays valid however
//! old it is; only the small version record of an object is revalidated.

pub mod body;
pub mod derived;
pub mod edge;
pub mod entry;
pub mod flight;
pub mod foyer_metrics;
pub mod freshness;
pub mod key;
pub mod original;
pub mod purge;
pub mod purge_rules;
pub mod status;
pub mod tiers;

pub use body::{Body, Found};
pub use derived::SourceVersion;
pub use edge::EdgeCache;
pub use original::{OriginalBody, OriginalView};
pub use status::CacheStatus;
