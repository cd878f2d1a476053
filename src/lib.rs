//! filegate: an edge proxy on pingora for an IM product's file API.
//!
//! Module map (find a route, a credential check or a transform by its file name):
//!
//! - [`config`]: the YAML config, defaults, env overrides, `validate()`.
//! - [`gate`]: [`gate::FileGate`], the `/file` component a pingora host mounts.
//! - [`proxy`]: the binary's own host ([`proxy::FileGateProxy`]); [`passthrough`]
//!   forwards everything else to the store; [`server`] starts it all.
//! - [`routes`]: one file per route family: [`routes::upload`], [`routes::forward`],
//!   [`routes::download`].
//! - [`auth`]: access tokens, store tokens, file_sign, sdk_sign, acting identity.
//! - [`storage`]: the embedded store, the S3 client, object keys, POST policies.
//! - [`delivery`]: writing objects to clients (ranges, 304, 302).
//! - [`media`]: thumbnails (libvips), video covers and AMR→MP3 (FFmpeg), third-party
//!   processors, limits and the transform pool; [`cache`]: derived results, single
//!   flight, write-back to `<app>/_derived/`.
//! - [`error`], [`envelope`]: the error model and the JSON envelope.
//! - [`admin`], [`metrics`], [`access_log`]: what operators see.
//! - [`cli`]: `filegate serve | check | token | sign`.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod drain;
pub mod envelope;
pub mod error;
pub mod file_type;
pub mod gate;
pub mod header_deadline;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod passthrough;
pub mod proxy;
pub mod query;
pub mod routes;
pub mod server;
pub mod storage;

pub use gate::{FileGate, GateCtx};
