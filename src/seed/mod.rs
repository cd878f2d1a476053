//! `filegate seed` (SPEC §8): a load-testing kit. Generates realistic files of every
//! kind, uploads them through a running filegate exactly as a client would, and
//! writes what the usual load tools replay.
//!
//! - [`plan`]: which file is the i-th, from `--seed` alone (kinds, variants, names,
//!   uploaders, conversations).
//! - [`generate`] and its makers [`images`] (libvips), [`video`] (FFmpeg's
//!   libx264), [`voice`] with [`amr`] (libopencore-amrnb), [`documents`]: the bytes,
//!   made on a generator thread of their own.
//! - [`client`]: access tokens, upload grants, the POST or PUT, the check.
//! - [`state`]: `seed.json`, written as the run goes; a rerun skips what is there.
//! - [`output`]: the URL mix, `urls.txt`, `vegeta.txt`, `wrk.lua`, `k6.js`.

pub mod amr;
pub mod client;
pub mod documents;
pub mod generate;
pub mod images;
pub mod output;
pub mod plan;
pub mod state;
pub mod video;
pub mod voice;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::clock::now_secs;
use crate::config::Config;
use crate::seed::client::SeedClient;
use crate::seed::generate::{generate, Generated};
use crate::seed::plan::{normalize_kinds, plan, Kind, Planned};
use crate::seed::state::{SeedState, UploadedFile};

/// Largest `--count`.
pub const MAX_COUNT: usize = 1_000_000;
/// seed.json is rewritten at most this often while uploading (and at the end, and
/// on a failure).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What `filegate seed` was asked.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// The running filegate's public base URL (`--url`).
    pub url: String,
    /// The config whose app secret mints the credentials (`-c`, or the default).
    pub config: Config,
    /// How messages name that config (`conf/x.yaml`, "the embedded default config").
    pub config_label: String,
    /// `--app`.
    pub app: String,
    /// `--count`: files in all.
    pub count: usize,
    /// `--out`.
    pub out: PathBuf,
    /// `--ttl`: lifetime of the URLs' sdk_sign.
    pub ttl: Duration,
    /// `--kinds`.
    pub kinds: Vec<Kind>,
    /// `--seed`.
    pub seed: u64,
}

/// A failed run: what went wrong, and whether it was the input (exit code 2) or the
/// run (exit code 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    /// The message, naming the cause (and the file, for an upload).
    pub message: String,
    /// The command line or config was at fault.
    pub bad_input: bool,
}

impl SeedError {
    fn input(message: impl Into<String>) -> SeedError {
        SeedError {
            message: message.into(),
            bad_input: true,
        }
    }

    fn failed(message: impl Into<String>) -> SeedError {
        SeedError {
            message: message.into(),
            bad_input: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct SeedSummary {
    /// Files uploaded by this run.
    pub uploaded: usize,
    /// Files found uploaded by an earlier run and skipped.
    pub skipped: usize,
    /// Lines of urls.txt.
    pub lines: usize,
    /// Distinct URLs in it.
    pub distinct: usize,
    /// Bytes uploaded by this run.
    pub bytes: u64,
}

impl SeedSummary {
    /// What the command prints at the end (on stderr): what it did, and how to
    /// replay the kit.
    pub fn describe(&self, opts: &SeedOptions) -> String {
        let out = opts.out.display();
        format!(
            "filegate seed: {} file(s) uploaded ({} bytes), {} already there; {} URLs ({} distinct, sdk_sign valid for {}) in {out}/urls.txt\nreplay: wrk -t2 -c16 -d30s -s {out}/wrk.lua {}",
            self.uploaded,
            self.bytes,
            self.skipped,
            self.lines,
            self.distinct,
            humantime::format_duration(opts.ttl),
            opts.url.trim_end_matches('/')
        )
    }
}

/// Runs `filegate seed`.
pub fn run(opts: &SeedOptions) -> Result<SeedSummary, SeedError> {
    let base = opts.url.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 9 {
        return Err(SeedError::input(format!(
            "--url {}: give filegate's public base URL, e.g. http://127.0.0.1:8080",
            opts.url
        )));
    }
    let kinds = normalize_kinds(&opts.kinds);
    if kinds.is_empty() {
        return Err(SeedError::input("--kinds names no kind"));
    }
    if opts.count < kinds.len() || opts.count > MAX_COUNT {
        return Err(SeedError::input(format!(
            "--count {}: between {} (one file of each kind asked) and {MAX_COUNT}",
            opts.count,
            kinds.len()
        )));
    }
    let app = opts.config.apps.get(&opts.app).ok_or_else(|| {
        SeedError::input(format!(
            "no app `{}` in {}: --app names an app of the config",
            opts.app, opts.config_label
        ))
    })?;
    crate::auth::sdk_sign::check_mint_ttl(&opts.app, app.max_sign_ttl, opts.ttl)
        .map_err(SeedError::input)?;
    if opts.ttl < Duration::from_secs(60) {
        return Err(SeedError::input("--ttl must be at least 1 minute"));
    }
    let secret = app
        .secrets
        .first()
        .ok_or_else(|| SeedError::input(format!("app `{}` has no secret", opts.app)))?
        .clone();

    let client = SeedClient::new(&base, &opts.app, secret.clone()).map_err(SeedError::failed)?;
    client
        .preflight(&opts.config_label)
        .map_err(SeedError::failed)?;
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        SeedError::input(format!(
            "--out {}: cannot create it: {e}",
            opts.out.display()
        ))
    })?;
    let state_path = opts.out.join("seed.json");
    let fresh = SeedState::new(&base, &opts.app, opts.seed, &kinds);
    let mut state = SeedState::load(&state_path, &fresh)
        .map_err(SeedError::input)?
        .unwrap_or(fresh);

    let expires = now_secs() + opts.ttl.as_secs();
    let signer = output::Signer {
        base: &base,
        app: &opts.app,
        secret: &secret,
        expires,
    };
    let planned = plan(opts.seed, &kinds, opts.count);
    let bar = progress_bar(opts.count as u64);

    // Files of an earlier run: kept if the store still has them, else made again.
    let mut to_make: Vec<Planned> = Vec::new();
    let mut skipped = 0;
    for p in &planned {
        let Some(done) = state.uploaded(p) else {
            to_make.push(p.clone());
            continue;
        };
        match client.head(&signer.url(done, "")) {
            Ok(Some(len)) if len == done.size => {
                skipped += 1;
                bar.inc(1);
            }
            Ok(_) => {
                state.forget(p.index);
                to_make.push(p.clone());
            }
            Err(e) => {
                bar.abandon();
                return Err(SeedError::failed(format!(
                    "{} (uploaded by an earlier run): {e}",
                    p.name
                )));
            }
        }
    }

    let uploaded = upload_all(&client, &signer, &bar, to_make, &mut state, &state_path);
    let save = state.save(&state_path);
    let (uploaded, bytes) = match uploaded {
        Ok(done) => done,
        Err(e) => {
            bar.abandon();
            let mut message = e;
            if let Err(s) = save {
                message.push_str(&format!(" (and {s})"));
            }
            return Err(SeedError::failed(message));
        }
    };
    save.map_err(SeedError::failed)?;
    bar.finish_and_clear();

    let files: Vec<UploadedFile> = state
        .files
        .iter()
        .filter(|f| f.index < opts.count)
        .cloned()
        .collect();
    let targets = output::targets(&files, &signer);
    let lines = output::request_lines(&targets, opts.seed);
    output::write_outputs(&opts.out, &lines).map_err(SeedError::failed)?;
    Ok(SeedSummary {
        uploaded,
        skipped,
        lines: lines.len(),
        distinct: targets.len(),
        bytes,
    })
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "seed {bar:30} {pos}/{len} files [{elapsed_precise}] {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Makes the files on a generator thread (CPU: libvips, FFmpeg, AMR) while this
/// thread uploads the previous ones. Returns the files and bytes uploaded.
fn upload_all(
    client: &SeedClient,
    signer: &output::Signer<'_>,
    bar: &ProgressBar,
    to_make: Vec<Planned>,
    state: &mut SeedState,
    state_path: &std::path::Path,
) -> Result<(usize, u64), String> {
    let (tx, rx) = mpsc::sync_channel::<(Planned, Result<Generated, String>)>(2);
    let expected = to_make.len();
    let generator = std::thread::Builder::new()
        .name("seed-generator".into())
        .spawn(move || {
            for p in to_make {
                let made = generate(&p);
                if tx.send((p, made)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the generator thread: {e}"))?;
    let mut last_save = Instant::now();
    let mut uploaded = 0;
    let mut bytes = 0u64;
    for (p, made) in rx.iter() {
        let what = format!("{} ({} {})", p.name, p.kind.name(), p.variant.label());
        let made = made.map_err(|e| format!("cannot make {what}: {e}"))?;
        let size = made.bytes.len() as u64;
        bar.set_message(format!("{what}, {size} bytes"));
        let file = upload_one(client, signer, &p, made)
            .map_err(|e| format!("{what}, {size} bytes: {e}"))?;
        bytes += size;
        uploaded += 1;
        state.record(file);
        if last_save.elapsed() >= SAVE_EVERY {
            state.save(state_path)?;
            last_save = Instant::now();
        }
        bar.inc(1);
    }
    if generator.join().is_err() || uploaded < expected {
        return Err(format!(
            "the generator thread stopped after {uploaded} of {expected} files"
        ));
    }
    Ok((uploaded, bytes))
}

/// Grant, upload, then the signed original must answer 200 with the file's length.
fn upload_one(
    client: &SeedClient,
    signer: &output::Signer<'_>,
    p: &Planned,
    made: Generated,
) -> Result<UploadedFile, String> {
    let size = made.bytes.len() as u64;
    let grant = client.grant(p, size)?;
    let key = client.key_of(&grant)?;
    client.upload(&grant, p, made.bytes)?;
    let file = UploadedFile {
        index: p.index,
        kind: p.kind,
        variant: p.variant.label(),
        name: p.name.clone(),
        content_type: p.variant.content_type().to_string(),
        size,
        sha256: made.sha256,
        key,
        object_name: grant.object_name.clone(),
        file_sign: grant.file_sign.clone(),
        upload_method: grant.method.clone(),
        uploader: p.uploader,
    };
    match client.head(&signer.url(&file, ""))? {
        Some(len) if len == size => Ok(file),
        Some(len) => Err(format!(
            "uploaded, but its download answers {len} bytes, not {size}"
        )),
        None => Err("the upload answered success, but the download is 404".into()),
    }
}
