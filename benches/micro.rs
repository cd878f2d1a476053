//! Micro benchmarks (criterion): credential verification of each kind, sdk_sign
//! canonicalization, a 4000x3000 JPEG -> 200x200 thumbnail, a 60 s AMR -> MP3
//! transcode, and a derived-cache hit. `cargo bench --bench micro`.
//! Fixtures are made once by real tools (vips; espeak-ng, ffmpeg and PyAV via
//! scripts/make-voice.sh) under
//! `target/bench-fixtures/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use filegate::access_token::verify_access_token;
use filegate::claims::{TokenClaims, TokenKind};
use filegate::config::{CacheConfig, Config, MediaConfig, Secret};
use filegate::file_sign::{verify_file_sign, FileSign};
use filegate::keys::ObjectKey;
use filegate::query::Query;
use filegate::sdk_sign;
use filegate::store_token::verify_store_token;
use filegate::EmbeddedStore;
use filegate::Metrics;
use filegate::ObjectStore;
use filegate::{Deadline, Limits};
use filegate::{EdgeCache, OriginalBody};
use filegate::{Fit, ImageFormat, Qualities};

const SECRET: &str = "bench-secret-0123456789abcdef";

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    dir
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// A 4000x3000 photo-like JPEG made by libvips' CLI.
fn photo() -> Vec<u8> {
    let path = fixtures().join("photo4000.jpg");
    if !path.exists() {
        let d = fixtures();
        let v = |n: &str| d.join(n).to_string_lossy().into_owned();
        for b in ["r", "g", "b"] {
            run(
                "vips",
                &[
                    "gaussnoise",
                    &v(&format!("{b}.v")),
                    "4000",
                    "3000",
                    "--sigma",
                    "60",
                    "--mean",
                    "128",
                ],
            );
        }
        run(
            "vips",
            &[
                "bandjoin",
                &format!("{} {} {}", v("r.v"), v("g.v"), v("b.v")),
                &v("rgb.v"),
            ],
        );
        run("vips", &["gaussblur", &v("rgb.v"), &v("smooth.v"), "2"]);
        run("vips", &["cast", &v("smooth.v"), &v("cast.v"), "uchar"]);
        run(
            "vips",
            &[
                "copy",
                &v("cast.v"),
                &format!("{}[Q=85]", path.display()),
                "--interpretation",
                "srgb",
            ],
        );
    }
    std::fs::read(path).expect("photo")
}

/// 60 s of AMR-NB speech (scripts/make-voice.sh: espeak-ng, ffmpeg, PyAV).
fn voice() -> Vec<u8> {
    let path = fixtures().join("voice60.amr");
    if !path.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-voice.sh");
        run(
            script.to_str().expect("path"),
            &["60", &path.to_string_lossy()],
        );
    }
    std::fs::read(path).expect("voice")
}

fn credentials(c: &mut Criterion) {
    let secrets = vec![
        Secret::new(SECRET),
        Secret::new("old-secret-0123456789abcdef"),
    ];
    let access = TokenClaims::new("demo", 42, TokenKind::User, 3600)
        .mint(&secrets[0])
        .expect("mint");
    let store = TokenClaims::new("demo", 42, TokenKind::Store, 3600)
        .mint(&secrets[0])
        .expect("mint");
    let sign = FileSign {
        app: "demo".into(),
        key: "demo/chat/1/42/20261125/1a2b3c4d5e6f708192a3b4c5d6.jpg".into(),
        ft: 102,
        tt: 1,
        ti: 42,
        fr: 7,
        name: Some("photo.jpg".into()),
        size: Some(123_456),
        mime: Some("image/jpeg".into()),
        iat: 1_767_225_600,
    }
    .mint(&secrets[0])
    .expect("mint");
    // The same, signed with the second (still listed) secret: one failed MAC first.
    let rotated = TokenClaims::new("demo", 42, TokenKind::User, 3600)
        .mint(&secrets[1])
        .expect("mint");
    let query = Query::parse("object_name=avatar/user/42/1a2b3c4d5e6f708192a3b4c5d6.jpg&image_type=2&w=200&h=200&thumbnail_strategy=2");
    let expires = filegate::now_secs() + 3600;
    let sdk = sdk_sign::sign(
        "/file/download/avatar",
        "demo",
        &query,
        expires,
        &secrets[0],
    );

    let mut g = c.benchmark_group("credentials");
    g.bench_function("access_token", |b| {
        b.iter(|| verify_access_token(&access, "demo", &secrets).expect("valid"))
    });
    g.bench_function("access_token_second_secret", |b| {
        b.iter(|| verify_access_token(&rotated, "demo", &secrets).expect("valid"))
    });
    g.bench_function("store_token", |b| {
        b.iter(|| verify_store_token(&store, "demo", &secrets).expect("valid"))
    });
    g.bench_function("file_sign", |b| {
        b.iter(|| verify_file_sign(&sign, "demo", &secrets).expect("valid"))
    });
    g.bench_function("sdk_sign", |b| {
        b.iter(|| {
            sdk_sign::verify_sdk_sign(
                &sdk,
                "/file/download/avatar",
                "demo",
                &query,
                &secrets,
                expires - 10,
                7 * 24 * 3600,
            )
            .expect("valid")
        })
    });
    g.bench_function("sdk_sign_canonical_string", |b| {
        b.iter(|| sdk_sign::canonical_string("/file/download/avatar", "demo", &query, expires))
    });
    g.finish();
}

fn media(c: &mut Criterion) {
    let config = MediaConfig::default();
    let limits = Limits::from_config(&config);
    let photo = photo();
    let voice = Bytes::from(voice());
    let qualities = Qualities {
        jpeg: 82,
        webp: 80,
        avif: 55,
    };
    let deadline = || Deadline(Instant::now() + Duration::from_secs(60));
    let mut g = c.benchmark_group("media");
    g.sample_size(20);
    g.bench_function("thumbnail_4000x3000_to_200x200", |b| {
        b.iter(|| {
            filegate::render_thumbnail(
                &photo,
                Fit {
                    w: Some(200),
                    h: Some(200),
                },
                ImageFormat::Jpeg,
                qualities,
                &limits,
                deadline(),
            )
            .expect("thumbnail")
        })
    });
    g.bench_function("amr_60s_to_mp3", |b| {
        b.iter(|| filegate::render_mp3(voice.clone(), &limits, deadline()).expect("mp3"))
    });
    g.finish();
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = Config::default();
    config.store.dir = dir.path().to_path_buf();
    let store: Arc<dyn ObjectStore> = Arc::new(EmbeddedStore::open(&config).expect("store"));
    let metrics = Arc::new(Metrics::new());
    let cache = EdgeCache::open(&CacheConfig::default(), metrics).expect("cache");
    let key = ObjectKey::parse("demo/avatar/user/1/a.jpg").expect("key");
    runtime
        .block_on(store.put(&key, bytes::Bytes::from(vec![7u8; 4096]), "image/jpeg"))
        .expect("put");
    let read = || async {
        match cache
            .original(&store, "demo", &key, filegate::OriginalView::default())
            .await
            .expect("original")
        {
            OriginalBody::Found(found) => {
                let mut body = found.body;
                let mut i = 0;
                body.next_piece(&mut i)
                    .await
                    .expect("piece")
                    .expect("bytes")
            }
            OriginalBody::Bypass => panic!("a small object is cached"),
        }
    };
    runtime.block_on(read());
    // Let the fill finish and the entry land in memory.
    // The timer is made inside the runtime: `sleep` outside one panics.
    runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(50)).await });
    c.bench_function("edge_cache_original_hit", |b| {
        b.iter(|| runtime.block_on(read()))
    });
}

criterion_group!(benches, credentials, media, cache_hit);
criterion_main!(benches);
