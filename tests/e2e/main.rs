//! End-to-end tests: the real `filegate` binary on free loopback ports, real stores,
//! real files made by real tools; assertions on what a client sees.

mod abuse;
mod browser;
mod cli_admin;
mod contract;
mod credentials;
mod embedding;
mod faults;
mod fixtures;
mod hardening;
mod harness;
mod large_files;
mod lifecycle;
mod media;
mod seaweed;
mod storage_suite;
