//! The `filegate` binary: parses the command line and runs it.

use clap::Parser;

/// mimalloc: the hot paths allocate small, short-lived buffers on every request; it
/// served cache hits measurably faster than glibc's malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    no_transparent_huge_pages();
    filegate::tune_malloc();
    filegate::init_logging();
    let cli = filegate::cli::Cli::parse();
    std::process::exit(filegate::cli::run(cli));
}

/// Transparent huge pages off for this process: mimalloc's arenas are marked for them,
/// and with a heap per thread each one rounds up to 2 MiB pages. Measured on the cold
/// thumbnail rows: RSS 193 -> 135 MiB, the same throughput (docs/decisions.md).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
