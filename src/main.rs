//! The `filegate` binary: parses the command line and runs it.

use clap::Parser;

/// mimalloc: the hot paths allocate small, short-lived buffers on every request; it
/// served cache hits measurably faster than glibc's malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    filegate::logging::init();
    let cli = filegate::cli::Cli::parse();
    std::process::exit(filegate::cli::run(cli));
}
