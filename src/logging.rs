//! Process logging: access lines (target `filegate::access`) are printed as bare JSON,
//! everything else as `time level target: message`. `RUST_LOG` filters as usual.

use std::io::Write;

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format(|buf, record| {
            if record.target() == "filegate::access" {
                writeln!(buf, "{}", record.args())
            } else {
                writeln!(
                    buf,
                    "{} {} {}: {}",
                    buf.timestamp_millis(),
                    record.level(),
                    record.target(),
                    record.args()
                )
            }
        })
        .try_init();
}
