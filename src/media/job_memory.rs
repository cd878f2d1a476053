//! Memory kept from one transform job for the next, and handed back when the pool goes
//! idle ([`give_back`]): glibc's arenas, where libvips, libjpeg and FFmpeg allocate
//! (Rust code allocates through mimalloc), set up once at start ([`tune`]), and large
//! picture buffers a job is done with ([`keep_buffer`], [`take_buffer`]).

use std::sync::Mutex;

/// Largest block glibc serves from its arenas rather than a fresh `mmap`: 32 MiB,
/// glibc's own ceiling. libjpeg's Huffman-optimised encode of a 12 MP picture keeps its
/// coefficients in blocks up to 24 MB; each fresh `mmap` of them cost ~9,000 page
/// faults (12 ms of a 300 ms HEIC rendition, docs/decisions.md).
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of an arena that `free` itself leaves in place (the idle
/// pool's [`give_back`] returns it); glibc's default (128 KiB, or twice the last
/// `mmap` it saw) handed those blocks back after every job.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Buffers at least this large are kept for the next job ([`keep_buffer`]).
const KEEP_FROM: usize = 8 << 20;

/// At most this many kept (36 MB each for a 12 MP picture): as many as a 2-core node
/// runs at once; a job beyond them gets a new buffer.
const MAX_KEPT: usize = 2;

/// Picture buffers kept between jobs: a 12 MP rendition's is 36 MB, and a fresh one
/// cost its page faults and a clearing (~11 ms of ~300, docs/decisions.md).
static KEPT: Kept = Kept(Mutex::new(Vec::new()));

/// Large buffers set aside for reuse.
struct Kept(Mutex<Vec<Vec<u8>>>);

impl Kept {
    fn take(&self, len: usize) -> Vec<u8> {
        if len >= KEEP_FROM {
            let kept = self.0.lock().ok().and_then(|mut kept| kept.pop());
            if let Some(mut buffer) = kept {
                if buffer.len() >= len {
                    buffer.truncate(len);
                } else {
                    buffer.resize(len, 0);
                }
                return buffer;
            }
        }
        vec![0u8; len]
    }

    fn keep(&self, buffer: Vec<u8>) {
        if buffer.len() < KEEP_FROM {
            return;
        }
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < MAX_KEPT {
                kept.push(buffer);
            }
        }
    }

    fn clear(&self) {
        let kept = self.0.lock().map(|mut kept| std::mem::take(&mut *kept));
        drop(kept);
    }
}

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

/// `len` bytes for a picture: a kept buffer, its old bytes left in it (the caller
/// must overwrite every one), or a zeroed new one.
pub fn take_buffer(len: usize) -> Vec<u8> {
    KEPT.take(len)
}

/// Keeps `buffer` (a finished picture's pixels) for the next large [`take_buffer`].
pub fn keep_buffer(buffer: Vec<u8>) {
    KEPT.keep(buffer);
}

/// Lets the kept buffers go and returns the free pages of glibc's heap to the
/// system. A whole-image decode (PNG, GIF, WebP) frees megabytes that glibc keeps
/// inside its arenas, and the process grew by ~150 MiB over the bench's cold rows
/// without this.
pub fn give_back() {
    KEPT.clear();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_taken_again_at_the_size_asked() {
        // Its own store: the process-wide one is cleared by any idle pool.
        let kept = Kept(Mutex::new(Vec::new()));
        kept.keep(vec![7u8; KEEP_FROM + 10]);
        let smaller = kept.take(KEEP_FROM);
        assert_eq!(smaller.len(), KEEP_FROM);
        assert_eq!(smaller[0], 7, "the kept buffer, not a new one");
        kept.keep(smaller);
        let larger = kept.take(KEEP_FROM + 20);
        assert_eq!(larger.len(), KEEP_FROM + 20);
        assert_eq!(larger[KEEP_FROM + 19], 0, "grown by zeros");
        // Small buffers are neither kept nor taken from the kept ones.
        kept.keep(vec![1u8; 16]);
        assert_eq!(kept.take(16), vec![0u8; 16]);
        // Cleared: a new buffer.
        kept.keep(vec![7u8; KEEP_FROM]);
        kept.clear();
        assert_eq!(kept.take(KEEP_FROM)[0], 0);
    }
}
