//! The command line (SPEC §8): `serve`, `check`, `token`, `sign`, `seed`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::claims::{TokenClaims, TokenKind};
use crate::auth::sdk_sign;
use crate::clock::now_secs;
use crate::config::{Config, ConfigError, DownloadMode, ProcessEnv};
use crate::query::Query;
use crate::seed::plan::Kind;
use crate::seed::{self, SeedOptions};
use crate::server::{self, ServeOptions};

/// filegate: an edge proxy for an IM product's file API.
#[derive(Debug, Parser)]
#[command(name = "filegate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (no -c: the embedded default, store in ./data, demo app).
    Serve {
        /// Config file.
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
        /// Take the listeners over from a running filegate (zero-downtime upgrade).
        #[arg(short = 'u', long)]
        upgrade: bool,
        /// Run in the background.
        #[arg(short = 'd', long)]
        daemon: bool,
    },
    /// Validate a config and exit (non-zero, naming the key at fault).
    Check {
        /// Config file.
        #[arg(short = 'c', long = "conf")]
        conf: PathBuf,
    },
    /// Mint an access or store token; prints it alone on stdout.
    Token {
        /// The app_id.
        #[arg(long)]
        app: String,
        /// The principal id (int64).
        #[arg(long, allow_hyphen_values = true)]
        sub: i64,
        /// user, admin or store.
        #[arg(long)]
        kind: TokenKind,
        /// Admin tokens: the groups administered (comma-separated); absent = all.
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<i64>>,
        /// Store tokens: the one object key, or key prefix ending in `/`.
        #[arg(long)]
        obj: Option<String>,
        /// Lifetime, e.g. 1h, 15m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Config file (default: the embedded default).
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
    },
    /// Append an sdk_sign to a download URL; prints the URL alone on stdout.
    Sign {
        /// The URL (its app_id query parameter names the app).
        url: String,
        /// Lifetime, e.g. 1h.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Config file (default: the embedded default).
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
    },
    /// Upload generated files of every kind through a running filegate and write a
    /// load-testing kit: urls.txt (signed download URLs), wrk.lua, vegeta.txt, k6.js
    /// and seed.json (what was uploaded; a rerun resumes).
    Seed {
        /// The running filegate's public base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Config file whose app secret mints the credentials (default: the embedded
        /// default).
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
        /// The app_id.
        #[arg(long)]
        app: String,
        /// Files to upload in all (at least one of each kind asked).
        #[arg(long)]
        count: usize,
        /// Directory to write the kit to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Lifetime of the URLs' sdk_sign, e.g. 24h (at most the app's max_sign_ttl).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Kinds of files (comma-separated).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "avatar,picture,voice,video,file"
        )]
        kinds: Vec<Kind>,
        /// Seed of the generated files and the URL mix (the same seed makes the same
        /// files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Loads a config (or the embedded default), applies the environment, validates.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    let mut config = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    config.apply_env(&ProcessEnv);
    config.validate()?;
    Ok(config)
}

/// Checks what the config's files hold: the TLS certificate and key (readable, the
/// chain parses, the key matches, valid now) and `store.ca_file`. Prints what passed.
fn check_files(config: Config) -> Result<Config, ConfigError> {
    if let Some(tls) = &config.tls {
        let summary = crate::tls::settings::check_files(tls)?;
        println!(
            "tls: {} on {} ({} certificate(s) in the chain), expires {} ({} day(s) left)",
            summary.subject, tls.listen, summary.chain_len, summary.not_after, summary.days_left
        );
        if summary.days_left < 14 {
            eprintln!("warning: tls.cert expires in {} day(s)", summary.days_left);
        }
    }
    if let Some(path) = config.store.ca_file() {
        let roots = crate::storage::tls_roots::StoreRoots::load(Some(path))?;
        println!("store.ca_file: {roots:?}");
        if !config.store.endpoint_is_https() {
            eprintln!("warning: store.ca_file is only used with an https:// store.endpoint");
        }
    }
    if config.tls.is_some() && !config.public_url.starts_with("https://") {
        eprintln!(
            "warning: public_url `{}` is not https://: handed-out URLs will not use the TLS listener",
            config.public_url
        );
    }
    Ok(config)
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve {
            conf,
            upgrade,
            daemon,
        } => {
            let config = match load_config(conf.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            let options = ServeOptions {
                upgrade,
                daemon,
                embedded_default: conf.is_none(),
            };
            match server::serve(config, options) {
                Ok(()) => 0,
                Err(e) => fail(&e, 1),
            }
        }
        Command::Check { conf } => match load_config(Some(&conf)).and_then(check_files) {
            Ok(config) => {
                for (id, app) in &config.apps {
                    if app.has_demo_secret() {
                        eprintln!("warning: apps.{id}.secrets holds the demo secret (loopback only); replace it before production");
                    }
                    if app.strip_location && app.download_mode == DownloadMode::Redirect {
                        eprintln!("warning: apps.{id}: strip_location does not apply in redirect mode (the store serves its bytes unchanged, GPS included); use download_mode: serve");
                    }
                    let largest_picture = app.max_upload.picture.as_u64();
                    if app.strip_location && largest_picture > config.cache.max_object() {
                        eprintln!("warning: apps.{id}: pictures up to {largest_picture} bytes (max_upload.picture) but cache.max_object is {}: originals above it stream through as stored, GPS included; raise cache.max_object (or cache.memory) or lower max_upload.picture", config.cache.max_object());
                    }
                }
                println!(
                    "ok: {} app(s), store {:?}, listen {}",
                    config.apps.len(),
                    config.store.kind,
                    config.listen
                );
                0
            }
            Err(e) => fail(&e.to_string(), 1),
        },
        Command::Token {
            app,
            sub,
            kind,
            groups,
            obj,
            ttl,
            conf,
        } => {
            let config = match load_config(conf.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            let Some(secret) = config.apps.get(&app).and_then(|a| a.secrets.first()) else {
                return fail(&format!("no app `{app}` in the config"), 2);
            };
            if groups.is_some() && kind != TokenKind::Admin {
                return fail("--groups applies to admin tokens only", 2);
            }
            if obj.is_some() && kind != TokenKind::Store {
                return fail("--obj applies to store tokens only", 2);
            }
            let mut claims = TokenClaims::new(&app, sub, kind, ttl.as_secs());
            claims.groups = groups;
            claims.obj = obj;
            match claims.mint(secret) {
                Ok(token) => {
                    println!("{token}");
                    0
                }
                Err(e) => fail(&format!("cannot sign: {e}"), 1),
            }
        }
        Command::Sign { url, ttl, conf } => {
            let config = match load_config(conf.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            match sign_url(&config, &url, ttl) {
                Ok(signed) => {
                    println!("{signed}");
                    0
                }
                Err(e) => fail(&e, 2),
            }
        }
        Command::Seed {
            url,
            conf,
            app,
            count,
            out,
            ttl,
            kinds,
            seed: seed_value,
        } => {
            let config = match load_config(conf.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            let config_label = match &conf {
                Some(path) => path.display().to_string(),
                None => "the embedded default config".to_string(),
            };
            let options = SeedOptions {
                url,
                config,
                config_label,
                app,
                count,
                out,
                ttl,
                kinds,
                seed: seed_value,
            };
            match seed::run(&options) {
                Ok(summary) => {
                    eprintln!("{}", summary.describe(&options));
                    0
                }
                Err(e) => fail(&e.message, if e.bad_input { 2 } else { 1 }),
            }
        }
    }
}

/// Appends `sdk_sign` to `url`, signed with the first secret of the URL's app.
pub fn sign_url(config: &Config, url: &str, ttl: Duration) -> Result<String, String> {
    let (without_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let after_scheme = without_fragment
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or("the URL needs a scheme, e.g. http://")?;
    let path_and_query = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .ok_or("the URL has no path")?;
    let (path, raw_query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let query = Query::parse(raw_query);
    let app_id = query
        .get("app_id")
        .map_err(|e| e.message().to_string())?
        .ok_or("the URL has no app_id query parameter")?
        .to_string();
    let app = config
        .apps
        .get(&app_id)
        .ok_or_else(|| format!("no app `{app_id}` in the config"))?;
    sdk_sign::check_mint_ttl(&app_id, app.max_sign_ttl, ttl)?;
    let secret = app
        .secrets
        .first()
        .ok_or_else(|| format!("app `{app_id}` has no secret"))?;
    let expires = now_secs() + ttl.as_secs();
    let sign = sdk_sign::sign(path, &app_id, &query, expires, secret);
    let separator = if raw_query.is_empty() { '?' } else { '&' };
    Ok(format!("{without_fragment}{separator}sdk_sign={sign}"))
}

fn fail(message: &str, code: i32) -> i32 {
    eprintln!("filegate: {message}");
    code
}
