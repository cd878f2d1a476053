//! FFmpeg plumbing shared by covers and voice: initialisation, opening a source held
//! in memory with a forced demuxer (no probing of other formats, no protocols, no
//! temp files), and an in-memory, size-limited output.

use std::ffi::CString;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use ffmpeg::ffi;
use ffmpeg::format::context::{Input, StreamIo};
use ffmpeg_next as ffmpeg;

use crate::error::ApiError;
use crate::media::limits::{too_large, undecodable};

static INIT: OnceLock<Result<(), String>> = OnceLock::new();

/// FFmpeg, initialised once. Its log goes to stderr at error level only.
pub fn init() -> Result<(), ApiError> {
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        Ok(())
    })
    .clone()
    .map_err(|e| ApiError::internal(format!("ffmpeg init: {e}")))
}

/// Refuses every nested open a demuxer may attempt (MOV `dref` references, HLS
/// segments, ...): a source may only read itself.
unsafe extern "C" fn deny_nested_open(
    _s: *mut ffi::AVFormatContext,
    _pb: *mut *mut ffi::AVIOContext,
    _url: *const libc::c_char,
    _flags: libc::c_int,
    _options: *mut *mut ffi::AVDictionary,
) -> libc::c_int {
    ffi::AVERROR(libc::EPERM)
}

/// Opens `source` with the demuxer named `demuxer` (e.g. `amr`, `mov`) and reads
/// its stream information. Undecodable input is 422.
pub fn open_input(source: Bytes, demuxer: &str) -> Result<Input, ApiError> {
    init()?;
    let name = CString::new(demuxer).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut io = StreamIo::from_read_seek(Cursor::new(source))
        .map_err(|e| ApiError::internal(format!("ffmpeg io: {e}")))?;
    // SAFETY: the sequence of avformat_open_input with a caller-allocated context and
    // custom I/O, as libavformat documents it: on failure avformat_open_input frees
    // the context (the custom `pb` stays ours and is freed when `io` drops); on
    // success the context and `io` move into `Input`, which closes them in order.
    unsafe {
        let format = ffi::av_find_input_format(name.as_ptr());
        if format.is_null() {
            return Err(ApiError::internal(format!(
                "this FFmpeg has no {demuxer} demuxer"
            )));
        }
        let mut ctx = ffi::avformat_alloc_context();
        if ctx.is_null() {
            return Err(ApiError::internal("ffmpeg: out of memory"));
        }
        (*ctx).pb = io.as_mut_ptr();
        (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as libc::c_int;
        (*ctx).io_open = Some(deny_nested_open);
        let opened = ffi::avformat_open_input(
            &mut ctx,
            std::ptr::null(),
            format as _,
            std::ptr::null_mut(),
        );
        if opened < 0 {
            return Err(undecodable(format!("the file is not valid {demuxer} data"))
                .with_detail(ffmpeg::Error::from(opened)));
        }
        let info = ffi::avformat_find_stream_info(ctx, std::ptr::null_mut());
        if info < 0 {
            ffi::avformat_close_input(&mut ctx);
            return Err(undecodable(format!("the file is not valid {demuxer} data"))
                .with_detail(ffmpeg::Error::from(info)));
        }
        Ok(Input::wrap_with_custom_io(ctx, io))
    }
}

/// An in-memory, seekable output (muxers seek back to fill headers, e.g. the MP3
/// Xing frame) that refuses to grow past a limit.
#[derive(Clone)]
pub struct MemoryOutput {
    inner: Arc<Mutex<OutputState>>,
    limit: u64,
}

struct OutputState {
    cursor: Cursor<Vec<u8>>,
    refused: bool,
}

impl MemoryOutput {
    /// An empty output of at most `limit` bytes.
    pub fn new(limit: u64) -> MemoryOutput {
        MemoryOutput {
            inner: Arc::new(Mutex::new(OutputState {
                cursor: Cursor::new(Vec::new()),
                refused: false,
            })),
            limit,
        }
    }

    /// The bytes written so far.
    pub fn take(&self) -> Vec<u8> {
        self.inner
            .lock()
            .map(|mut s| std::mem::take(s.cursor.get_mut()))
            .unwrap_or_default()
    }

    /// 413 if a write was refused for size: call it when muxing failed.
    pub fn limit_error(&self) -> Option<ApiError> {
        let refused = self.inner.lock().map(|s| s.refused).unwrap_or(false);
        refused.then(|| too_large("the result would exceed media.max_output_bytes"))
    }
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("output buffer poisoned")
}

impl Write for MemoryOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut state = self.inner.lock().map_err(|_| poisoned())?;
        if state.cursor.position() + buf.len() as u64 > self.limit {
            state.refused = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "output limit",
            ));
        }
        state.cursor.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for MemoryOutput {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.lock().map_err(|_| poisoned())?.cursor.seek(pos)
    }
}
