//! End-to-end tests: the real `filegate` binary on free loopback ports, real stores,
//! real files made by real tools; assertions on what a client sees.

/// Runs a case once per store (the embedded store and a real S3 server), as two tests
/// of a module named after the case. The case takes a `storage_suite::Backend`.
macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn embedded() {
                    super::$case(crate::storage_suite::Backend::Embedded)
                }
                #[test]
                fn s3() {
                    super::$case(crate::storage_suite::Backend::S3)
                }
            }
        )*
    };
}

mod abuse;
mod answers;
mod browser;
mod cli_admin;
mod cluster;
mod cluster_purge;
mod contract;
mod credentials;
mod dashboard;
mod durability;
mod eager;
mod edge_cache;
mod embedding;
mod faults;
mod fixtures;
mod hardening;
mod hardening3;
mod harness;
mod heif;
mod heif_corpus;
mod large_files;
mod lifecycle;
mod location;
mod media;
mod media_info;
mod rate_limits;
mod renditions;
mod seaweed;
mod seed;
mod storage_suite;
mod thumbnail_pixels;
mod tls;
mod tls_kit;
