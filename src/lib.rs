//! filegate: an edge proxy on pingora for an IM product's file API.
//!
//! Module map (find a route, a credential check or a transform by its file name).
//! A request reads top-down: listener ([`server`], [`tls`], [`header_deadline`]) → host ([`proxy`]) → the `/file`
//! component ([`gate`]) → route ([`routes`]) → credentials ([`auth`]) → cache
//! ([`cache`]) → store or media ([`storage`], [`derived`], [`media`]) → delivery
//! ([`delivery`]).
//!
//! - [`config`]: the YAML config, one file per section, defaults, env overrides,
//!   `validate()`.
//! - [`gate`]: [`gate::FileGate`], the `/file` component a pingora host mounts;
//!   [`services::Services`] is what its handlers use.
//! - [`proxy`]: the binary's own host ([`proxy::FileGateProxy`]); [`front`] answers
//!   everything outside `/file/` (the embedded store's HTTP side, or the pass-through
//!   to the S3 store); [`server`] starts it all.
//! - [`routes`]: which route a path names ([`routes::RouteId`]) and one file per route
//!   family: [`routes::upload`], [`routes::forward`], [`routes::download`];
//!   [`representation`]: the download parameters (`image_type`, `w`, `h`...) as one
//!   parse shared with the config's eager sizes.
//! - [`auth`]: access tokens, store tokens, file_sign, sdk_sign, acting identity.
//! - [`storage`]: the embedded store, the S3 client, object keys, POST policies.
//! - [`cache`]: cached results, single flight, write-back to `<app>/_derived/`;
//!   [`derived`]: plan → cache → make for thumbnails, covers and MP3s.
//! - [`delivery`]: writing objects to clients (ranges, 304, 302); [`headers`]: the
//!   header values every layer shares.
//! - [`media`]: thumbnails (libvips), video covers and AMR→MP3 (FFmpeg), third-party
//!   processors, limits and the transform pool.
//! - [`error`], [`envelope`]: the error model and the JSON envelope.
//! - [`eager`]: results made in the background as soon as an upload completes
//!   (`apps.<id>.eager`), bounded and at low priority.
//! - [`cluster`]: the ring of nodes (each object owned by one), peer fills, health.
//! - [`admin`], [`metrics`], [`access_log`]: what operators see.
//! - [`tls`]: TLS and HTTP/2 at the edge (certificate checks, the handshake deadline,
//!   ALPN); TLS to the store is [`storage::tls_roots`].
//! - [`cli`]: `filegate serve | check | token | sign | seed`; [`seed`]: the
//!   load-testing kit `filegate seed` makes (generated files, uploads, replay files).

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod drain;
pub mod eager;
pub mod error;
pub mod fetch;
pub mod file_type;
pub mod front;
pub mod gate;
pub mod header_deadline;
pub mod headers;
pub mod http;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod proxy;
pub mod query;
pub mod redact;
pub mod representation;
pub mod route_table;
pub mod routes;
pub mod seed;
pub mod server;
pub mod services;
pub mod storage;
pub mod tls;

pub use gate::{FileGate, GateCtx};
