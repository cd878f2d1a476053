//! AMR-NB encoding through libopencore-amrnb (Debian `libopencore-amrnb0`; building
//! needs `libopencore-amrnb-dev`): Debian's FFmpeg has the `amrnb` decoder but no
//! AMR-NB encoder. A minimal safe wrapper around the library's three-call interface
//! (`Encoder_Interface_init`, `_Encode`, `_exit`), writing the RFC 4867 §5 storage
//! format (`#!AMR\n`, then one frame per 20 ms) that IM clients record.

use std::ffi::{c_int, c_short, c_uchar, c_void};
use std::ptr::NonNull;

#[link(name = "opencore-amrnb")]
extern "C" {
    fn Encoder_Interface_init(dtx: c_int) -> *mut c_void;
    fn Encoder_Interface_exit(state: *mut c_void);
    fn Encoder_Interface_Encode(
        state: *mut c_void,
        mode: c_int,
        speech: *const c_short,
        out: *mut c_uchar,
        force_speech: c_int,
    ) -> c_int;
}

/// The magic that starts an AMR-NB file.
pub const AMR_NB_MAGIC: &[u8] = b"#!AMR\n";
/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// The sample rate AMR-NB takes.
pub const SAMPLE_RATE: u32 = 8_000;
/// Largest encoded frame (12.2 kbit/s: 31 bytes and the header byte).
const MAX_FRAME_BYTES: usize = 32;

/// AMR-NB bit rates (the library's `enum Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 7.95 kbit/s.
    Mr795 = 5,
    /// 12.2 kbit/s (what most voice messages use).
    Mr122 = 7,
}

/// One encoder state. Not `Send` (the raw pointer): made and used on one thread.
pub struct AmrNbEncoder {
    state: NonNull<c_void>,
}

impl AmrNbEncoder {
    /// A fresh encoder, discontinuous transmission off (every frame is speech).
    pub fn new() -> Result<AmrNbEncoder, String> {
        // SAFETY: a plain constructor; a null result means it could not allocate.
        let state = unsafe { Encoder_Interface_init(0) };
        NonNull::new(state)
            .map(|state| AmrNbEncoder { state })
            .ok_or_else(|| "libopencore-amrnb could not start an encoder".to_string())
    }

    /// Encodes one 20 ms frame of 8 kHz mono samples, appending it to `out`.
    pub fn encode_frame(
        &mut self,
        pcm: &[i16; FRAME_SAMPLES],
        mode: Mode,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut frame = [0u8; MAX_FRAME_BYTES * 2];
        // SAFETY: a live state from Encoder_Interface_init; `pcm` holds the 160
        // samples the call reads; `frame` has room for the largest frame (the call
        // writes at most 32 bytes).
        let written = unsafe {
            Encoder_Interface_Encode(
                self.state.as_ptr(),
                mode as c_int,
                pcm.as_ptr(),
                frame.as_mut_ptr(),
                0,
            )
        };
        match usize::try_from(written) {
            Ok(n) if (1..=MAX_FRAME_BYTES).contains(&n) => {
                out.extend_from_slice(&frame[..n]);
                Ok(())
            }
            _ => Err(format!(
                "libopencore-amrnb failed to encode a frame ({written})"
            )),
        }
    }
}

impl Drop for AmrNbEncoder {
    fn drop(&mut self) {
        // SAFETY: the state is live and freed exactly once.
        unsafe { Encoder_Interface_exit(self.state.as_ptr()) }
    }
}

/// An AMR-NB file of `pcm` (8 kHz mono; the last frame padded with silence).
pub fn encode_amr_nb(pcm: &[i16], mode: Mode) -> Result<Vec<u8>, String> {
    let mut encoder = AmrNbEncoder::new()?;
    let mut out = Vec::with_capacity(AMR_NB_MAGIC.len() + pcm.len() / FRAME_SAMPLES * 32 + 32);
    out.extend_from_slice(AMR_NB_MAGIC);
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        let mut frame = [0i16; FRAME_SAMPLES];
        frame[..chunk.len()].copy_from_slice(chunk);
        encoder.encode_frame(&frame, mode, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::voice::amr_nb_duration;

    #[test]
    fn frames_are_storage_format_and_measure_right() {
        let pcm: Vec<i16> = (0..SAMPLE_RATE as usize)
            .map(|i| ((i as f64 * 0.2).sin() * 8000.0) as i16)
            .collect();
        let amr = encode_amr_nb(&pcm, Mode::Mr122).unwrap();
        assert!(amr.starts_with(AMR_NB_MAGIC));
        // 50 frames of 32 bytes, header byte = mode 7, quality bit set.
        assert_eq!(amr.len(), AMR_NB_MAGIC.len() + 50 * 32);
        assert_eq!(amr[AMR_NB_MAGIC.len()], (7 << 3) | 0x04);
        assert_eq!(
            amr_nb_duration(&amr).unwrap(),
            std::time::Duration::from_secs(1)
        );
        let low = encode_amr_nb(&pcm, Mode::Mr795).unwrap();
        assert_eq!(low.len(), AMR_NB_MAGIC.len() + 50 * 21);
    }
}
