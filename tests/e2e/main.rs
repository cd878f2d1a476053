//! End-to-end tests: the real `filegate` binary on free loopback ports, real stores,
//! real files made by real tools; assertions on what a client sees.

mod cli_admin;
mod credentials;
mod embedding;
mod fixtures;
mod harness;
mod media;
