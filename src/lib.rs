//! filegate: an edge proxy on pingora for an IM product's file API.
//!
//! # Layers
//!
//! Every file belongs to one layer and imports only from its own layer or the ones
//! below; no two files import each other, directly or around a circle
//! (`tests/layering.rs` checks both). From the bottom:
//!
//! | layer | modules | what they are |
//! | --- | --- | --- |
//! | leaves | [`error`], [`query`], `redact`, `access_log`, [`file_type`], `representation`, `headers`, [`route_table`], `clock`, `demo` | values every layer shares: the error model, the query, the one type table, the route table, download parameters |
//! | config | [`config`] | the file format, defaults, validation (one file a section) |
//! | engines | `storage`, `auth`, `media`, `cache`, `cluster`, `metrics`, `rate_limit`, `eager::queue` | the store, credentials, transforms, the edge cache, the cluster client (ring, signatures, fills, purges), metrics, rate limits |
//! | http | `http` | the envelope and the one error writer, delivery (ranges, 304, 302), the one disposition policy |
//! | services | `services` | what every handler shares |
//! | fetch | `fetch` | the pipeline of originals and derived results: owner or local, plan, obtain, write back |
//! | handlers | `routes`, `front`, `admin`, `eager::worker` | the six `/file` routes, the peer handlers, the store's front (embedded store, pass-through), the admin listener, eager derivation |
//! | hosts | [`gate`], `proxy`, `lane` | the `/file` component ([`FileGate`]), the binary's pingora host, and the `/file` requests answered on the connection before pingora's session |
//! | process | `server`, `tls`, `header_deadline`, `drain`, `logging`, `seed`, [`cli`] | starting, listening, TLS, stopping, logging, the load kit, the command line |
//!
//! docs/architecture.md follows a cached download and a cold thumbnail through the
//! files in call order.
//!
//! # The public surface
//!
//! A pingora host mounts [`FileGate`] (`examples/host_proxy.rs`); the binary runs
//! [`cli`]; [`config`] is the config's contract. The rest is re-exported below for the
//! tests, benchmarks and fuzz targets that drive a part directly (credential formats,
//! parsers, signers, transforms); everything else is internal.

pub(crate) mod access_log;
pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod cache;
pub mod cli;
pub(crate) mod clock;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod demo;
pub(crate) mod drain;
pub(crate) mod eager;
pub mod error;
pub(crate) mod fetch;
pub mod file_type;
pub(crate) mod front;
pub mod gate;
pub(crate) mod header_deadline;
pub(crate) mod headers;
pub(crate) mod http;
pub(crate) mod lane;
pub(crate) mod logging;
pub(crate) mod media;
pub(crate) mod metrics;
pub(crate) mod proxy;
pub mod query;
pub(crate) mod rate_limit;
pub(crate) mod redact;
pub(crate) mod representation;
pub mod route_table;
pub(crate) mod routes;
pub(crate) mod seed;
pub(crate) mod server;
pub(crate) mod services;
pub(crate) mod storage;
pub(crate) mod tls;

// The component and what a host builds it from (a host passes its pingora `Session`,
// which is an `Exchange`).
pub use gate::{FileGate, GateCtx};
pub use http::exchange::Exchange;
pub use metrics::Metrics;
pub use server::build_store;
pub use storage::embedded::EmbeddedStore;
pub use storage::ObjectStore;

// The process: logging (the binary installs it first).
pub use logging::init as init_logging;
pub use media::job_memory::tune as tune_malloc;

// Credentials: the formats the product's app server and SDKs share (README), and
// their verifiers.
pub use auth::{
    access_token, authenticate, claims, file_sign, jwt, sdk_sign, store_token, verified, Actor,
    Credentials, Principal, SignedRequest,
};
pub use clock::now_secs;
pub use cluster::{fill, peer_auth};

// Parsers and signers of what crosses the wire.
pub use front::form_upload::check_form;
pub use front::s3_error::S3Refusal;
pub use routes::download::{wanted, DownloadTarget};
pub use routes::upload::UploadTarget;
pub use routes::Route;
pub use storage::range::parse_content_range;
pub use storage::{keys, post_policy, sigv4, ByteRange, TypeRule, UploadRequest};

// Transforms and the cache, for the micro benchmarks.
pub use cache::{EdgeCache, OriginalBody, OriginalView};
pub use media::jpeg::thumbnail::{scale_denominator, stored_target};
pub use media::jpeg::{decode as decode_jpeg, Decoded as DecodedJpeg};
pub use media::limits::{Deadline, Limits};
pub use media::thumbnail::render_thumbnail;
pub use media::vips;
pub use media::voice::render_mp3;
pub use media::{Fit, ImageFormat, Qualities};
