//! 8-bit 4:2:0 YCbCr to packed RGB through libyuv (Debian's `libyuv0`, Chromium's
//! converter): chroma upsampled bilinearly (the 3:1 weights of libjpeg's "fancy"
//! upsampling) and the rows converted with AVX2 where the CPU has it. For a 12 MP HEIC
//! rendition it took the conversion from swscale's accurate path (31 ms, plus a copy
//! of each tile into the picture) to a few ms written straight into the picture
//! (docs/decisions.md).

use std::os::raw::c_int;

/// libyuv's matrix and range constants (opaque: only their addresses are passed).
#[repr(C)]
struct YuvConstants {
    _opaque: [u8; 0],
}

/// libyuv's `FilterMode::kFilterBilinear`.
const FILTER_BILINEAR: c_int = 2;

#[link(name = "yuv")]
extern "C" {
    // The "Yvu" constants with U and V swapped make libyuv's BGR writer (its "RGB24")
    // write R, G, B in memory order, as libyuv's own I420ToRAW does.
    static kYvuI601Constants: YuvConstants;
    static kYvuJPEGConstants: YuvConstants;
    static kYvuH709Constants: YuvConstants;
    static kYvuF709Constants: YuvConstants;
    static kYvu2020Constants: YuvConstants;
    static kYvuV2020Constants: YuvConstants;

    fn I420ToRGB24MatrixFilter(
        src_y: *const u8,
        src_stride_y: c_int,
        src_u: *const u8,
        src_stride_u: c_int,
        src_v: *const u8,
        src_stride_v: c_int,
        dst_rgb24: *mut u8,
        dst_stride_rgb24: c_int,
        yuvconstants: *const YuvConstants,
        width: c_int,
        height: c_int,
        filter: c_int,
    ) -> c_int;

    fn I420Rotate(
        src_y: *const u8,
        src_stride_y: c_int,
        src_u: *const u8,
        src_stride_u: c_int,
        src_v: *const u8,
        src_stride_v: c_int,
        dst_y: *mut u8,
        dst_stride_y: c_int,
        dst_u: *mut u8,
        dst_stride_u: c_int,
        dst_v: *mut u8,
        dst_stride_v: c_int,
        width: c_int,
        height: c_int,
        mode: c_int,
    ) -> c_int;
}

/// The colour matrices libyuv converts with, by their ITU-T H.273 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
    Bt2020,
}

impl Matrix {
    /// The matrix of an `nclx` `matrix_coefficients` code; `None` for those libyuv has
    /// no constants for (identity, FCC, SMPTE 240M, YCgCo, ...). Unspecified (2) is read
    /// as BT.601, as swscale and libheif do.
    pub fn from_code(code: u16) -> Option<Matrix> {
        match code {
            1 => Some(Matrix::Bt709),
            2 | 5 | 6 => Some(Matrix::Bt601),
            9 | 10 => Some(Matrix::Bt2020),
            _ => None,
        }
    }

    fn constants(self, full_range: bool) -> *const YuvConstants {
        // SAFETY: only the addresses of libyuv's immutable statics are taken.
        unsafe {
            match (self, full_range) {
                (Matrix::Bt601, false) => &kYvuI601Constants,
                (Matrix::Bt601, true) => &kYvuJPEGConstants,
                (Matrix::Bt709, false) => &kYvuH709Constants,
                (Matrix::Bt709, true) => &kYvuF709Constants,
                (Matrix::Bt2020, false) => &kYvu2020Constants,
                (Matrix::Bt2020, true) => &kYvuV2020Constants,
            }
        }
    }
}

/// One 8-bit 4:2:0 picture's planes: each plane's bytes and the distance between its
/// rows.
pub struct Planes<'a> {
    pub y: (&'a [u8], usize),
    pub u: (&'a [u8], usize),
    pub v: (&'a [u8], usize),
}

/// Whether `rows` rows of `row` bytes, `row_stride` apart, fit in `len` bytes (the last
/// row need only be as long as what is read or written of it).
fn holds(len: usize, rows: usize, row_stride: usize, row: usize) -> bool {
    rows == 0
        || (row_stride >= row
            && (rows - 1)
                .checked_mul(row_stride)
                .and_then(|n| n.checked_add(row))
                .is_some_and(|n| n <= len))
}

/// `v` as a C `int`, if it fits.
fn int(v: usize) -> Option<c_int> {
    c_int::try_from(v).ok()
}

impl Planes<'_> {
    /// The planes' row strides (Y, U, V) as libyuv's `int`s.
    fn strides(&self) -> Option<(c_int, c_int, c_int)> {
        Some((int(self.y.1)?, int(self.u.1)?, int(self.v.1)?))
    }

    /// Whether the planes hold a `width` x `height` picture (chroma at half of each,
    /// rounded up).
    fn hold(&self, width: usize, height: usize) -> bool {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        holds(self.y.0.len(), height, self.y.1, width)
            && holds(self.u.0.len(), ch, self.u.1, cw)
            && holds(self.v.0.len(), ch, self.v.1, cw)
    }
}

/// The top-left `width` x `height` of `planes` converted into packed RGB at the start
/// of `into`, `stride` bytes a row; `false` (and nothing written) when a plane or
/// `into` is too short for that or a size does not fit libyuv's `int`s.
pub fn i420_to_rgb(
    planes: &Planes<'_>,
    matrix: Matrix,
    full_range: bool,
    width: usize,
    height: usize,
    into: &mut [u8],
    stride: usize,
) -> bool {
    if width == 0 || height == 0 {
        return true;
    }
    let fits = planes.hold(width, height)
        && width
            .checked_mul(3)
            .is_some_and(|row| holds(into.len(), height, stride, row));
    let (Some(w), Some(h), Some(sd), Some((sy, su, sv))) =
        (int(width), int(height), int(stride), planes.strides())
    else {
        return false;
    };
    if !fits {
        return false;
    }
    // SAFETY: every plane holds the rows libyuv reads (`height` rows of `width` luma,
    // half as many of half as much chroma, rounded up) and `into` the rows it writes,
    // as checked above; the constants are libyuv's statics. U and V are passed swapped
    // with the swapped constants (see the extern block).
    let status = unsafe {
        I420ToRGB24MatrixFilter(
            planes.y.0.as_ptr(),
            sy,
            planes.v.0.as_ptr(),
            sv,
            planes.u.0.as_ptr(),
            su,
            into.as_mut_ptr(),
            sd,
            matrix.constants(full_range),
            w,
            h,
            FILTER_BILINEAR,
        )
    };
    status == 0
}

/// The top-left `width` x `height` of `planes` turned clockwise by `degrees` (90, 180
/// or 270) by libyuv (SIMD transposes of each plane) into `scratch`, grown as
/// needed: the turned picture's planes, rows packed. `None` when a plane is too short,
/// a size does not fit libyuv's `int`s or `degrees` is not a turn.
pub fn rotate<'s>(
    planes: &Planes<'_>,
    width: usize,
    height: usize,
    degrees: u16,
    scratch: &'s mut Vec<u8>,
) -> Option<Planes<'s>> {
    if !matches!(degrees, 90 | 180 | 270) || width == 0 || height == 0 {
        return None;
    }
    if !planes.hold(width, height) {
        return None;
    }
    // The turned picture's sides, its chroma's, and where each plane starts.
    let (tw, th) = if degrees == 180 {
        (width, height)
    } else {
        (height, width)
    };
    let (cw, ch) = (tw.div_ceil(2), th.div_ceil(2));
    let luma = tw.checked_mul(th)?;
    let chroma = cw.checked_mul(ch)?;
    let total = luma.checked_add(chroma.checked_mul(2)?)?;
    if scratch.len() < total {
        scratch.resize(total, 0);
    }
    let (sy, su, sv) = planes.strides()?;
    let (w, h, dy, dc) = (int(width)?, int(height)?, int(tw)?, int(cw)?);
    let (out_y, chroma_planes) = scratch[..total].split_at_mut(luma);
    let (out_u, out_v) = chroma_planes.split_at_mut(chroma);
    // SAFETY: the source planes hold the rows libyuv reads (checked by `hold`), and the
    // three output planes, split from `scratch`, are `th` rows of `tw` and `ch` rows
    // of `cw` bytes: what a turned `width` x `height` picture fills.
    let status = unsafe {
        I420Rotate(
            planes.y.0.as_ptr(),
            sy,
            planes.u.0.as_ptr(),
            su,
            planes.v.0.as_ptr(),
            sv,
            out_y.as_mut_ptr(),
            dy,
            out_u.as_mut_ptr(),
            dc,
            out_v.as_mut_ptr(),
            dc,
            w,
            h,
            c_int::from(degrees),
        )
    };
    (status == 0).then_some(Planes {
        y: (out_y, tw),
        u: (out_u, cw),
        v: (out_v, cw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat picture of one YCbCr colour.
    fn flat(y: u8, u: u8, v: u8, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let c = w.div_ceil(2) * h.div_ceil(2);
        (vec![y; w * h], vec![u; c], vec![v; c])
    }

    fn convert(y: u8, u: u8, v: u8, matrix: Matrix, full: bool) -> [u8; 3] {
        let (w, h) = (5, 3);
        let (py, pu, pv) = flat(y, u, v, w, h);
        let planes = Planes {
            y: (&py, w),
            u: (&pu, w.div_ceil(2)),
            v: (&pv, w.div_ceil(2)),
        };
        let mut out = vec![0u8; w * h * 3];
        assert!(i420_to_rgb(&planes, matrix, full, w, h, &mut out, w * 3));
        // Every pixel the same: the last one checks odd sizes were covered.
        let last = out[out.len() - 3..].to_vec();
        assert_eq!(&out[..3], &last[..]);
        [last[0], last[1], last[2]]
    }

    fn near(got: [u8; 3], want: [u8; 3]) -> bool {
        got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2)
    }

    #[test]
    fn colours_come_out_red_green_blue_in_memory_order() {
        // Full-range BT.601 red, green and blue (JFIF's equations).
        for (yuv, rgb) in [
            ((76, 85, 255), [254, 0, 0]),
            ((150, 44, 21), [0, 255, 1]),
            ((29, 255, 107), [0, 0, 254]),
        ] {
            let got = convert(yuv.0, yuv.1, yuv.2, Matrix::Bt601, true);
            assert!(near(got, rgb), "{yuv:?}: {got:?} not near {rgb:?}");
        }
        // Video range: 16 is black, 235 white.
        assert!(near(convert(16, 128, 128, Matrix::Bt709, false), [0, 0, 0]));
        assert!(near(convert(235, 128, 128, Matrix::Bt709, false), [255; 3]));
        // BT.709 red differs from BT.601 red in its Y, Cb, Cr.
        let red709 = convert(54, 99, 255, Matrix::Bt709, true);
        assert!(near(red709, [255, 0, 0]), "{red709:?}");
    }

    #[test]
    fn short_planes_or_output_are_refused_untouched() {
        let (w, h) = (4, 4);
        let (py, pu, pv) = flat(100, 128, 128, w, h);
        let planes = Planes {
            y: (&py[..w * h - 1], w),
            u: (&pu, 2),
            v: (&pv, 2),
        };
        let mut out = vec![7u8; w * h * 3];
        assert!(!i420_to_rgb(
            &planes,
            Matrix::Bt601,
            true,
            w,
            h,
            &mut out,
            w * 3
        ));
        let planes = Planes {
            y: (&py, w),
            u: (&pu, 2),
            v: (&pv, 2),
        };
        assert!(!i420_to_rgb(
            &planes,
            Matrix::Bt601,
            true,
            w,
            h,
            &mut out[..47],
            w * 3
        ));
        assert!(out.iter().all(|&b| b == 7));
        assert!(i420_to_rgb(
            &planes,
            Matrix::Bt601,
            true,
            w,
            h,
            &mut out,
            w * 3
        ));
    }

    #[test]
    fn a_turn_moves_each_sample_and_refuses_short_planes() {
        // 3 x 2 luma numbered, chroma 2 x 1.
        let (py, pu, pv) = (vec![0u8, 1, 2, 3, 4, 5], vec![10u8, 11], vec![20u8, 21]);
        let planes = Planes {
            y: (&py, 3),
            u: (&pu, 2),
            v: (&pv, 2),
        };
        let mut scratch = Vec::new();
        let turned = rotate(&planes, 3, 2, 90, &mut scratch).expect("turned");
        // Clockwise: the bottom-left sample comes to the top-left.
        assert_eq!(
            (turned.y.1, &turned.y.0[..6]),
            (2, &[3u8, 0, 4, 1, 5, 2][..])
        );
        assert_eq!((turned.u.0, turned.v.0), (&[10u8, 11][..], &[20u8, 21][..]));
        let half = rotate(&planes, 3, 2, 180, &mut scratch).expect("turned");
        assert_eq!(&half.y.0[..6], &[5u8, 4, 3, 2, 1, 0][..]);
        assert!(rotate(&planes, 3, 2, 45, &mut scratch).is_none());
        let short = Planes {
            y: (&py[..5], 3),
            u: (&pu, 2),
            v: (&pv, 2),
        };
        assert!(rotate(&short, 3, 2, 90, &mut scratch).is_none());
    }

    #[test]
    fn matrices_libyuv_lacks_are_left_to_swscale() {
        assert_eq!(Matrix::from_code(0), None, "identity (GBR)");
        assert_eq!(Matrix::from_code(4), None, "FCC");
        assert_eq!(Matrix::from_code(7), None, "SMPTE 240M");
        assert_eq!(Matrix::from_code(1), Some(Matrix::Bt709));
        assert_eq!(Matrix::from_code(6), Some(Matrix::Bt601));
    }
}
