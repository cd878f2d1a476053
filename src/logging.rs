//! Process logging: access lines (target `filegate::access`) are printed as bare JSON,
//! everything else as `time level target: message`, with every credential redacted
//! ([`crate::redact`]) whoever wrote the line (filegate, pingora or a library, at any
//! level). `RUST_LOG` filters as usual.

use std::fmt::Write as _;
use std::io::Write;

use crate::redact::redact;

/// Targets whose lines below WARN are never written, whatever `RUST_LOG` says: the AWS
/// SDK's signing internals (reached through `tracing`'s `log` bridge, which is on for
/// foyer's sake) print whole signing requests, access key ids included.
const QUIET_BELOW_WARN: [&str; 2] = ["aws_", "tracing::span"];

/// The logger, minus [`QUIET_BELOW_WARN`].
struct Filtered(env_logger::Logger);

impl Filtered {
    fn quiet(metadata: &log::Metadata<'_>) -> bool {
        metadata.level() > log::Level::Warn
            && QUIET_BELOW_WARN
                .iter()
                .any(|t| metadata.target().starts_with(t))
    }
}

impl log::Log for Filtered {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !Filtered::quiet(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !Filtered::quiet(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let logger = env_logger::Builder::from_env(env)
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
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Filtered(logger))).is_ok() {
        log::set_max_level(max);
    }
}
