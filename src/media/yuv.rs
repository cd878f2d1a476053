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
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    // The last row of each plane need only be as long as what is read of it.
    let holds = |len: usize, rows: usize, row_stride: usize, row: usize| {
        row_stride >= row
            && (rows - 1)
                .checked_mul(row_stride)
                .and_then(|n| n.checked_add(row))
                .is_some_and(|n| n <= len)
    };
    let fits = holds(planes.y.0.len(), height, planes.y.1, width)
        && holds(planes.u.0.len(), ch, planes.u.1, cw)
        && holds(planes.v.0.len(), ch, planes.v.1, cw)
        && width
            .checked_mul(3)
            .is_some_and(|row| holds(into.len(), height, stride, row));
    let int = |v: usize| c_int::try_from(v).ok();
    let (Some(w), Some(h), Some(sy), Some(su), Some(sv), Some(sd)) = (
        int(width),
        int(height),
        int(planes.y.1),
        int(planes.u.1),
        int(planes.v.1),
        int(stride),
    ) else {
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
    fn matrices_libyuv_lacks_are_left_to_swscale() {
        assert_eq!(Matrix::from_code(0), None, "identity (GBR)");
        assert_eq!(Matrix::from_code(4), None, "FCC");
        assert_eq!(Matrix::from_code(7), None, "SMPTE 240M");
        assert_eq!(Matrix::from_code(1), Some(Matrix::Bt709));
        assert_eq!(Matrix::from_code(6), Some(Matrix::Bt601));
    }
}
