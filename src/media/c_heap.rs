//! The C libraries' heap: libvips, libjpeg and FFmpeg allocate through glibc's malloc
//! (Rust code through mimalloc). What glibc may keep is set once at start ([`tune`]);
//! the transform workers hand it back when they go idle ([`give_back`]).

/// Largest block glibc serves from its arenas rather than a fresh `mmap`: 32 MiB,
/// glibc's own ceiling. libjpeg's Huffman-optimised encode of a 12 MP picture keeps its
/// coefficients in blocks up to 24 MB; each fresh `mmap` of them cost ~9,000 page
/// faults (12 ms of a 300 ms HEIC rendition, docs/decisions.md).
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of an arena that `free` itself leaves in place (the idle
/// workers' [`give_back`] returns it); glibc's default (128 KiB, or twice the last
/// `mmap` it saw) handed those blocks back after every job.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Two arenas, blocks up to 32 MiB kept in them between jobs. glibc makes up to 8
/// arenas per core, one per thread that contends, and libvips runs its pipelines on a
/// pool of threads of its own: each arena kept what its images freed. Measured on the
/// cold GIF row: RSS 297 -> 163 MiB with two, the same throughput (imgproxy ships with
/// the same setting, as MALLOC_ARENA_MAX=2).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes limits of glibc's allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns the free pages of glibc's heap to the system. A whole-image decode (PNG,
/// GIF, WebP) frees megabytes that glibc keeps inside its arenas, and the process grew
/// by ~150 MiB over the bench's cold rows without this.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's heap.
    unsafe {
        libc::malloc_trim(0);
    }
}
