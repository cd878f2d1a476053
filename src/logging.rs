//! Process logging: access lines (target `filegate::access`) are printed as bare JSON,
//! everything else as `time level target: message`, with every credential redacted
//! ([`crate::redact`]) whoever wrote the line (filegate, pingora or a library, at any
//! level). `RUST_LOG` filters as usual.

use std::fmt::Write as _;
use std::io::Write;

use crate::redact::redact;

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format(|buf, record| {
            if record.target() == "filegate::access" {
                // Access lines are built from credential-free fields only.
                return writeln!(buf, "{}", record.args());
            }
            let mut message = String::new();
            let _ = write!(message, "{}", record.args());
            writeln!(
                buf,
                "{} {} {}: {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                redact(&message)
            )
        })
        .try_init();
}
