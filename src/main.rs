//! The `filegate` binary: parses the command line and runs it.

use clap::Parser;

/// mimalloc: the hot paths allocate small, short-lived buffers on every request; it
/// served cache hits measurably faster than glibc's malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    no_transparent_huge_pages();
    few_malloc_arenas();
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

/// Two glibc malloc arenas (libvips, libjpeg, FFmpeg allocate through glibc; Rust code
/// through mimalloc). glibc makes up to 8 per core, one per thread that contends, and
/// libvips runs its pipelines on a pool of threads of its own: each arena kept what its
/// images freed. Measured on the cold GIF row: RSS 297 -> 163 MiB, the same throughput
/// (imgproxy ships with the same setting, as MALLOC_ARENA_MAX=2).
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a limit of glibc's allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
