//! HEIC pictures decoded by FFmpeg's HEVC decoder instead of libheif 1.15 (Debian 12's,
//! with libde265): 2.2x less CPU for an iPhone photo (BENCHMARKS.md). The HEIF item
//! table is read here ([`crate::media::heif_items`]), each tile of the primary image
//! (a `grid` of `hvc1` items, or one `hvc1` item) is decoded and converted to RGB with
//! the file's colour matrix and range (by libyuv straight into its place in the
//! picture, [`crate::media::yuv`]; by swscale when shrunk or not 4:2:0). A
//! thumbnail a half, a quarter or an eighth of the picture or less has each tile
//! averaged down by as much while it is converted (as libjpeg's scaled decode does for
//! a JPEG): a quarter of the pixels to convert, lay and resize per halving.
//!
//! Only the common case is taken: 8-bit HEVC, no alpha, no `clap` or `imir`. Anything
//! else (AVIF, 10-bit, alpha, mirrored or cropped pictures, damaged files) answers
//! `None` and libvips' `heifload` does it as before, so the limits, the repairs and the
//! error answers stay where they are.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, frame, Packet};
use ffmpeg_next as ffmpeg;

use crate::media::heif_items::{
    item_bytes, item_infos, locations, primary_item, properties, references, Associations,
    Location, Reader,
};
use crate::media::isobmff::{child, meta_children, BoxRef};
use crate::media::job_memory;
use crate::media::jpeg::thumbnail::scale_denominator;
use crate::media::limits::Deadline;
use crate::media::pixels::Pixels;
use crate::media::yuv;

/// Most tiles of a grid decoded here (an iPhone photo has 48; beyond, libheif).
const MAX_TILES: usize = 1024;

/// A decoded primary picture: RGB as stored (shrunk on decode, perhaps), the
/// orientation its `irot` asks for (as an EXIF orientation: 1, 3, 6 or 8) and its ICC
/// profile.
pub struct Decoded {
    /// Packed RGB, 3 bands: the picture, or its tiles each averaged down by the
    /// same factor.
    pub pixels: Pixels,
    /// The picture's stored width and height before any shrink (what a fit is
    /// computed from, so that the result's size never depends on the shrink).
    pub stored: (u32, u32),
    /// The `irot` turn as an EXIF orientation.
    pub orientation: i32,
    /// The embedded ICC profile (`colr` of type `prof` or `rICC`).
    pub icc: Option<Vec<u8>>,
}

/// The colour of the coded pixels (`colr` of type `nclx`), as libheif assumes it when
/// absent: BT.601, full range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Nclx {
    matrix: u16,
    full_range: bool,
}

/// What the primary item and its tiles say.
struct Plan {
    /// Tiles in raster order, each its `hvcC` and its bytes.
    tiles: Vec<(Vec<u8>, Vec<u8>)>,
    /// Columns of the grid (1 for a single image).
    columns: usize,
    /// The picture's size (the grid's output size, or the image's `ispe`).
    width: usize,
    height: usize,
    orientation: i32,
    icc: Option<Vec<u8>>,
    nclx: Nclx,
}

/// The primary picture of `bytes`, decoded by FFmpeg, or its preview (a `thmb` item)
/// when that is at least `needed` (upright width and height, from the picture's size)
/// on both sides, shrunk on decode as far as still covers `needed`; `None` when it is
/// not a case this path takes (see the module doc) or anything about it is unexpected.
pub fn decode(
    bytes: &[u8],
    max_pixels: u64,
    needed: impl Fn(usize, usize) -> (usize, usize),
    deadline: Deadline,
) -> Option<Decoded> {
    let table = Table::read(bytes)?;
    let primary = table.plan(table.primary)?;
    // The size the canvas is made at: never above the pixel limit, whatever the
    // header libvips read said (a grid's descriptor is read here, not there).
    if (primary.width as u64).saturating_mul(primary.height as u64) > max_pixels {
        return None;
    }
    let (w, h) = primary.upright();
    let (need_w, need_h) = needed(w, h);
    let preview = table
        .previews()
        .into_iter()
        .filter_map(|id| table.plan(id))
        .filter(|p| {
            let (pw, ph) = p.upright();
            pw >= need_w && ph >= need_h
        })
        .min_by_key(|p| p.width * p.height);
    let chosen = preview.unwrap_or(primary);
    let (w, h) = chosen.upright();
    let shrink = scale_denominator((w as i64, h as i64), (need_w as i64, need_h as i64));
    render(chosen, usize::from(shrink), deadline)
}

/// The largest of `wanted`, its halves, ... 1 that divides both sides of a tile (so
/// that each shrunk tile lands on whole pixels of the canvas).
fn tile_shrink(wanted: usize, tile: (usize, usize)) -> usize {
    let mut s = wanted.max(1);
    while s > 1 && (tile.0 % s != 0 || tile.1 % s != 0) {
        s /= 2;
    }
    s
}

/// The clockwise turn, in degrees, that an EXIF orientation of [`Plan`] (1, 3, 6 or
/// 8) asks for.
fn clockwise_degrees(orientation: i32) -> u16 {
    match orientation {
        6 => 90,
        3 => 180,
        8 => 270,
        _ => 0,
    }
}

/// The plan's tiles decoded, each converted (and averaged down by up to `wanted`) into
/// its place on one canvas. A whole-size picture that `irot` turns has each 4:2:0 tile
/// turned as it is laid (libyuv turns the tile's planes, in cache), so the picture is
/// made upright: turning 12 MP afterwards cost ~40 ms more.
fn render(plan: Plan, wanted: usize, deadline: Deadline) -> Option<Decoded> {
    let (width, height) = (plan.width, plan.height);
    // Made at the first tile, once its size (hence the shrink) is known.
    let mut canvas: Option<Canvas> = None;
    let mut decoder = hevc_decoder(&plan.tiles.first()?.0)?;
    // One scaler for every tile (they share size and format), one RGB frame reused.
    let mut scaler: Option<scaling::Context> = None;
    let mut rgb = frame::Video::empty();
    let mut tile_size = None;
    for (index, (hvcc, data)) in plan.tiles.iter().enumerate() {
        if deadline.check().is_err() {
            return None;
        }
        if index > 0 && hvcc != &plan.tiles[0].0 {
            // A tile coded with other parameters: its own decoder.
            decoder = hevc_decoder(hvcc)?;
        }
        let picture = decode_one(&mut decoder, data)?;
        let (tw, th) = (picture.width() as usize, picture.height() as usize);
        // Every tile of a grid has one size.
        if *tile_size.get_or_insert((tw, th)) != (tw, th) {
            return None;
        }
        let canvas = match canvas.as_mut() {
            Some(c) => c,
            None => {
                // The tiles must cover the picture (each is checked to be this size):
                // then every byte of the canvas is written, and a kept one's old
                // pixels never show.
                let rows = plan.tiles.len().div_ceil(plan.columns);
                if tw * plan.columns < width || th * rows < height {
                    return None;
                }
                let shrink = tile_shrink(wanted, (tw, th));
                let libyuv = yuv::Matrix::from_code(plan.nclx.matrix).is_some();
                let turn = if shrink == 1 && libyuv && is_420(&picture) {
                    clockwise_degrees(plan.orientation)
                } else {
                    0
                };
                canvas.insert(Canvas::new(width, height, shrink, turn)?)
            }
        };
        let shrink = canvas.shrink;
        let (row, column) = (index / plan.columns, index % plan.columns);
        match canvas.convert_in_place(&picture, plan.nclx, column * tw, row * th) {
            Some(true) => continue,
            Some(false) => return None,
            // A tile that is not 4:2:0 on a canvas laid upright: libvips' then.
            None if canvas.turn != 0 => return None,
            None => {}
        }
        let converter = match scaler.as_mut() {
            Some(s) if s.input().format == picture.format() => s,
            _ => scaler.insert(rgb_scaler(&picture, plan.nclx, shrink)?),
        };
        converter.run(&picture, &mut rgb).ok()?;
        let (sw, sh) = (tw / shrink, th / shrink);
        let tile = Tile {
            data: rgb.data(0),
            stride: rgb.stride(0),
            width: sw,
            height: sh,
        };
        canvas.place(&tile, column * sw, row * sh);
    }
    let canvas = canvas?;
    // Laid upright: the turn is done, and the size a fit is computed from is upright.
    let (orientation, stored) = if canvas.turn != 0 {
        (1, plan.upright())
    } else {
        (plan.orientation, (width, height))
    };
    Some(Decoded {
        pixels: Pixels {
            data: canvas.data,
            width: u32::try_from(canvas.width).ok()?,
            height: u32::try_from(canvas.height).ok()?,
            bands: 3,
        },
        stored: (u32::try_from(stored.0).ok()?, u32::try_from(stored.1).ok()?),
        orientation,
        icc: plan.icc,
    })
}

/// Whether a decoded tile is 8-bit 4:2:0 (what libyuv converts and turns).
fn is_420(picture: &frame::Video) -> bool {
    matches!(picture.format(), Pixel::YUV420P | Pixel::YUVJ420P)
}

/// The picture being laid: RGB at 1/`shrink` of its size (rounded up), upright when
/// `turn` is not 0 (then `shrink` is 1).
struct Canvas {
    data: Vec<u8>,
    /// Width and height of `data` (upright when turned).
    width: usize,
    height: usize,
    /// The stored picture's width and height at this scale (where the tiles are).
    stored: (usize, usize),
    shrink: usize,
    /// Degrees clockwise each tile is turned by as it is laid (0, 90, 180 or 270).
    turn: u16,
    /// A turned tile's planes (reused from tile to tile).
    turned: Vec<u8>,
}

impl Canvas {
    /// A canvas whose every byte the tiles will write (so a kept one is not cleared).
    fn new(width: usize, height: usize, shrink: usize, turn: u16) -> Option<Canvas> {
        let stored = (width.div_ceil(shrink), height.div_ceil(shrink));
        let (width, height) = if turn == 90 || turn == 270 {
            (stored.1, stored.0)
        } else {
            stored
        };
        Some(Canvas {
            data: job_memory::take_buffer(width.checked_mul(height)?.checked_mul(3)?),
            width,
            height,
            stored,
            shrink,
            turn,
            turned: Vec::new(),
        })
    }

    fn place(&mut self, tile: &Tile<'_>, x: usize, y: usize) {
        place(&mut self.data, self.width, self.height, tile, x, y);
    }

    /// An 8-bit 4:2:0 tile converted by libyuv straight to (`x`, `y`) of an unshrunk
    /// stored picture, clipped to it (turned first, and laid where the turn puts it,
    /// on a turned canvas): `Some(true)` when done, `Some(false)` when libyuv refused
    /// it, `None` when it is not a tile libyuv takes (swscale converts it then).
    fn convert_in_place(
        &mut self,
        picture: &frame::Video,
        nclx: Nclx,
        x: usize,
        y: usize,
    ) -> Option<bool> {
        let matrix = yuv::Matrix::from_code(nclx.matrix)?;
        if self.shrink != 1 || !is_420(picture) {
            return None;
        }
        let (stored_w, stored_h) = self.stored;
        if x >= stored_w || y >= stored_h {
            return Some(true);
        }
        let (w, h) = (
            (picture.width() as usize).min(stored_w - x),
            (picture.height() as usize).min(stored_h - y),
        );
        let planes = yuv::Planes {
            y: (picture.data(0), picture.stride(0)),
            u: (picture.data(1), picture.stride(1)),
            v: (picture.data(2), picture.stride(2)),
        };
        // Where the (turned) tile goes, and its sides there.
        let (to_x, to_y, to_w, to_h) = match self.turn {
            90 => (stored_h - y - h, x, h, w),
            180 => (stored_w - x - w, stored_h - y - h, w, h),
            270 => (y, stored_w - x - w, h, w),
            _ => (x, y, w, h),
        };
        let stride = self.width * 3;
        let into = self.data.get_mut((to_y * self.width + to_x) * 3..)?;
        if self.turn == 0 {
            return Some(yuv::i420_to_rgb(
                &planes,
                matrix,
                nclx.full_range,
                w,
                h,
                into,
                stride,
            ));
        }
        let Some(turned) = yuv::rotate(&planes, w, h, self.turn, &mut self.turned) else {
            return Some(false);
        };
        Some(yuv::i420_to_rgb(
            &turned,
            matrix,
            nclx.full_range,
            to_w,
            to_h,
            into,
            stride,
        ))
    }
}

impl Plan {
    /// Width and height as displayed (after the `irot` turn).
    fn upright(&self) -> (usize, usize) {
        if matches!(self.orientation, 6 | 8) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// The item table of a file's `meta`, read once.
struct Table<'a> {
    b: &'a [u8],
    primary: u32,
    infos: Vec<crate::media::heif_items::ItemInfo>,
    iref: Option<BoxRef>,
    /// Where every item's bytes are (`iloc`, read once).
    locations: Vec<Location>,
    idat: Option<(usize, usize)>,
    props: Vec<BoxRef>,
    associations: Associations,
}

impl<'a> Table<'a> {
    fn read(b: &'a [u8]) -> Option<Table<'a>> {
        let in_meta = meta_children(b)?;
        let (props, associations) = properties(b, child(&in_meta, b"iprp")?)?;
        let infos = item_infos(b, child(&in_meta, b"iinf")?);
        let ids: Vec<u32> = infos.iter().map(|i| i.id).collect();
        let table = Table {
            b,
            primary: primary_item(b, child(&in_meta, b"pitm")?)?,
            locations: locations(b, child(&in_meta, b"iloc")?, &ids)?,
            infos,
            iref: child(&in_meta, b"iref").copied(),
            idat: child(&in_meta, b"idat").map(|d| (d.body, d.end)),
            props,
            associations,
        };
        // Alpha planes are auxiliary images of the primary: libvips composes them.
        let alpha = table
            .refs(b"auxl")
            .iter()
            .any(|(aux, to)| to.contains(&table.primary) && is_alpha(b, &table.props_of(*aux)));
        (!alpha).then_some(table)
    }

    fn kind_of(&self, id: u32) -> Option<[u8; 4]> {
        self.infos.iter().find(|i| i.id == id).map(|i| i.kind)
    }

    fn refs(&self, kind: &[u8; 4]) -> Vec<(u32, Vec<u32>)> {
        self.iref
            .map(|iref| references(self.b, &iref, kind))
            .unwrap_or_default()
    }

    fn props_of(&self, id: u32) -> Vec<&BoxRef> {
        self.associations
            .iter()
            .filter(|(item, _)| *item == id)
            .flat_map(|(_, list)| list.iter().filter_map(|&i| self.props.get(i)))
            .collect()
    }

    /// The primary's previews: items with a `thmb` reference to it.
    fn previews(&self) -> Vec<u32> {
        self.refs(b"thmb")
            .into_iter()
            .filter(|(_, to)| to.contains(&self.primary))
            .map(|(from, _)| from)
            .collect()
    }

    fn data_of(&self, id: u32) -> Option<Vec<u8>> {
        let location = self.locations.iter().find(|l| l.id == id)?;
        item_bytes(self.b, location, self.idat)
    }

    /// What decoding `item` (an `hvc1` image or a `grid` of them) takes.
    fn plan(&self, item: u32) -> Option<Plan> {
        let b = self.b;
        let tiles: Vec<u32> = match &self.kind_of(item)? {
            b"hvc1" => vec![item],
            b"grid" => {
                let mut dimg = self.refs(b"dimg");
                dimg.retain(|(from, _)| *from == item);
                dimg.into_iter().next()?.1
            }
            _ => return None,
        };
        if tiles.is_empty() || tiles.len() > MAX_TILES {
            return None;
        }
        let item_props = self.props_of(item);
        let first_tile_props = self.props_of(*tiles.first()?);
        let mut orientation = 1;
        let mut icc = None;
        let mut nclx = None;
        for p in item_props.iter().chain(first_tile_props.iter()) {
            match &p.kind {
                // Mirrors and crops: libheif's.
                b"imir" | b"clap" => return None,
                b"pixi" if !eight_bit(b, p) => return None,
                b"colr" => read_colour(b, p, &mut icc, &mut nclx),
                _ => {}
            }
        }
        for p in &item_props {
            if &p.kind == b"irot" {
                // Anticlockwise quarter turns, as the EXIF orientation that undoes them.
                orientation = match b.get(p.body)? & 3 {
                    0 => 1,
                    1 => 8,
                    2 => 3,
                    _ => 6,
                };
            }
        }
        let (width, height, columns) = if tiles == [item] {
            let (w, h) = ispe(b, &item_props)?;
            (w, h, 1)
        } else {
            let grid = self.data_of(item)?;
            let mut r = Reader::new(&grid, 0, grid.len());
            let _version = r.u8()?;
            let flags = r.u8()?;
            let rows = usize::from(r.u8()?) + 1;
            let columns = usize::from(r.u8()?) + 1;
            let (w, h) = if flags & 1 == 1 {
                (r.u32()? as usize, r.u32()? as usize)
            } else {
                (usize::from(r.u16()?), usize::from(r.u16()?))
            };
            if rows * columns != tiles.len() {
                return None;
            }
            (w, h, columns)
        };
        if width == 0 || height == 0 {
            return None;
        }
        // The tiles (by their declared size) must cover the picture, and the picture
        // must not be much smaller than the tiles: either way a descriptor that lies.
        let (tw, th) = ispe(b, &first_tile_props)?;
        let rows = tiles.len() / columns;
        if tw * columns < width
            || th * rows < height
            || (tw * columns) as u64 * (th * rows) as u64 > 4 * (width as u64 * height as u64)
        {
            return None;
        }
        let mut coded = Vec::with_capacity(tiles.len());
        for &tile in &tiles {
            if &self.kind_of(tile)? != b"hvc1" {
                return None;
            }
            let hvcc = self
                .props_of(tile)
                .into_iter()
                .find(|p| &p.kind == b"hvcC")?;
            coded.push((b.get(hvcc.body..hvcc.end)?.to_vec(), self.data_of(tile)?));
        }
        Some(Plan {
            tiles: coded,
            columns,
            width,
            height,
            orientation,
            icc,
            nclx: nclx.unwrap_or(Nclx {
                matrix: 6,
                full_range: true,
            }),
        })
    }
}

fn ispe(b: &[u8], props: &[&BoxRef]) -> Option<(usize, usize)> {
    let p = props.iter().find(|p| &p.kind == b"ispe")?;
    let mut r = Reader::new(b, p.body, p.end);
    r.take(4)?;
    Some((r.u32()? as usize, r.u32()? as usize))
}

/// A `pixi` of 8 bits in every channel.
fn eight_bit(b: &[u8], pixi: &BoxRef) -> bool {
    let mut r = Reader::new(b, pixi.body, pixi.end);
    let Some(n) = r.take(4).and_then(|_| r.u8()) else {
        return false;
    };
    r.take(usize::from(n))
        .is_some_and(|bits| bits.iter().all(|&d| d == 8))
}

/// An `auxC` naming an alpha plane: HEVC's `urn:mpeg:hevc:2015:auxid:1` or MPEG-B's
/// `urn:mpeg:mpegB:cicp:systems:auxiliary:alpha` (depth maps and gain maps are other
/// auxiliary images, which a thumbnail ignores).
fn is_alpha(b: &[u8], props: &[&BoxRef]) -> bool {
    props.iter().any(|p| {
        if &p.kind != b"auxC" {
            return false;
        }
        let urn = b.get(p.body + 4..p.end).unwrap_or(&[]);
        let urn = urn.split(|&c| c == 0).next().unwrap_or(&[]);
        urn == b"urn:mpeg:hevc:2015:auxid:1" || memchr::memmem::find(urn, b"alpha").is_some()
    })
}

fn read_colour(b: &[u8], colr: &BoxRef, icc: &mut Option<Vec<u8>>, nclx: &mut Option<Nclx>) {
    let Some(kind) = b.get(colr.body..colr.body + 4) else {
        return;
    };
    match kind {
        b"prof" | b"rICC" if icc.is_none() => {
            *icc = b.get(colr.body + 4..colr.end).map(<[u8]>::to_vec);
        }
        b"nclx" if nclx.is_none() => {
            let mut r = Reader::new(b, colr.body + 4, colr.end);
            let (_, _, matrix, flag) = match (r.u16(), r.u16(), r.u16(), r.u8()) {
                (Some(p), Some(t), Some(m), Some(f)) => (p, t, m, f),
                _ => return,
            };
            *nclx = Some(Nclx {
                matrix,
                full_range: flag & 0x80 != 0,
            });
        }
        _ => {}
    }
}

/// An HEVC decoder set up by `hvcc` (the `hvcC` box's payload, which FFmpeg reads as
/// its extradata: parameter sets and the NAL length size), one thread.
fn hevc_decoder(hvcc: &[u8]) -> Option<ffmpeg::decoder::Video> {
    crate::media::av::init().ok()?;
    let codec = ffmpeg::decoder::find(codec::Id::HEVC)?;
    let mut context = codec::Context::new_with_codec(codec);
    let padding = ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    // SAFETY: the context is ours and not yet opened; the buffer is allocated by
    // FFmpeg (it frees it with the context), `hvcc.len()` bytes copied into it, the
    // padding zeroed as FFmpeg requires.
    unsafe {
        let raw = context.as_mut_ptr();
        let buffer = ffmpeg::ffi::av_mallocz(hvcc.len() + padding) as *mut u8;
        if buffer.is_null() {
            return None;
        }
        std::ptr::copy_nonoverlapping(hvcc.as_ptr(), buffer, hvcc.len());
        (*raw).extradata = buffer;
        (*raw).extradata_size = i32::try_from(hvcc.len()).ok()?;
        (*raw).thread_count = 1;
    }
    context.decoder().video().ok()
}

/// One picture out of one tile's bytes (length-prefixed NAL units).
fn decode_one(decoder: &mut ffmpeg::decoder::Video, data: &[u8]) -> Option<frame::Video> {
    let packet = Packet::copy(data);
    decoder.send_packet(&packet).ok()?;
    let mut picture = frame::Video::empty();
    if decoder.receive_frame(&mut picture).is_ok() {
        return Some(picture);
    }
    // A decoder that holds the picture back gives it up at the end of its input.
    decoder.send_eof().ok()?;
    let got = decoder.receive_frame(&mut picture).is_ok();
    decoder.flush();
    got.then_some(picture)
}

/// A scaler from `picture`'s format to RGB24 at 1/`shrink` of its size (an area
/// average), with the file's colour matrix and range; `None` for formats this path
/// does not take (above 8 bits).
fn rgb_scaler(picture: &frame::Video, nclx: Nclx, shrink: usize) -> Option<scaling::Context> {
    let format = picture.format();
    if !matches!(
        format,
        Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::GRAY8
    ) {
        return None;
    }
    let (w, h) = (picture.width(), picture.height());
    let divisor = u32::try_from(shrink).ok()?.max(1);
    let flags = if divisor == 1 {
        scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT
    } else {
        scaling::Flags::AREA | scaling::Flags::ACCURATE_RND
    };
    let mut scaler =
        scaling::Context::get(format, w, h, Pixel::RGB24, w / divisor, h / divisor, flags).ok()?;
    let colourspace = match nclx.matrix {
        1 => ffmpeg::ffi::SWS_CS_ITU709,
        9 | 10 => ffmpeg::ffi::SWS_CS_BT2020,
        4 => ffmpeg::ffi::SWS_CS_FCC,
        7 => ffmpeg::ffi::SWS_CS_SMPTE240M,
        _ => ffmpeg::ffi::SWS_CS_ITU601,
    };
    // SAFETY: a live scaler of ours; the coefficient tables are FFmpeg's statics.
    unsafe {
        let coefficients = ffmpeg::ffi::sws_getCoefficients(colourspace);
        ffmpeg::ffi::sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            coefficients,
            i32::from(nclx.full_range),
            ffmpeg::ffi::sws_getCoefficients(ffmpeg::ffi::SWS_CS_DEFAULT),
            1,
            0,
            1 << 16,
            1 << 16,
        );
    }
    Some(scaler)
}

/// A decoded tile's RGB rows: `height` rows of `width` pixels, `stride` bytes apart.
struct Tile<'a> {
    data: &'a [u8],
    stride: usize,
    width: usize,
    height: usize,
}

/// Copies a tile to (`x`, `y`) of the canvas (`width` x `height` RGB), clipped to it.
fn place(canvas: &mut [u8], width: usize, height: usize, tile: &Tile<'_>, x: usize, y: usize) {
    if x >= width || y >= height {
        return;
    }
    let bytes = tile.width.min(width - x) * 3;
    for row in 0..tile.height.min(height - y) {
        let from = row * tile.stride;
        let to = ((y + row) * width + x) * 3;
        if let (Some(src), Some(dst)) = (
            tile.data.get(from..from + bytes),
            canvas.get_mut(to..to + bytes),
        ) {
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shrink_always_lands_tiles_on_whole_pixels() {
        assert_eq!(tile_shrink(8, (512, 512)), 8);
        assert_eq!(tile_shrink(4, (512, 512)), 4);
        assert_eq!(tile_shrink(8, (500, 500)), 4, "500 = 4 x 125");
        assert_eq!(tile_shrink(8, (510, 512)), 2);
        assert_eq!(tile_shrink(4, (511, 512)), 1);
        assert_eq!(tile_shrink(0, (512, 512)), 1);
        let canvas = Canvas::new(4032, 3023, 4, 0).expect("a canvas");
        assert_eq!((canvas.width, canvas.height), (1008, 756), "rounded up");
    }

    #[test]
    fn a_canvas_laid_turned_is_the_stored_picture_turned() {
        // 2 x 2 tiles of 6 x 4 clipped to 10 x 7 (odd edges), each flat in chroma (so
        // that no upsampling differs) and graded in luma.
        let (tw, th, sw, sh) = (6usize, 4usize, 10usize, 7usize);
        let tile = |n: usize| {
            let mut f = frame::Video::new(Pixel::YUV420P, tw as u32, th as u32);
            let stride = f.stride(0);
            for y in 0..th {
                for x in 0..tw {
                    f.data_mut(0)[y * stride + x] = (16 + n * 50 + x * 7 + y * 3) as u8;
                }
            }
            for plane in 1..3 {
                f.data_mut(plane).fill((60 + n * 40 + plane * 10) as u8);
            }
            f
        };
        let nclx = Nclx {
            matrix: 6,
            full_range: true,
        };
        let lay = |turn| {
            let mut c = Canvas::new(sw, sh, 1, turn).expect("a canvas");
            for n in 0..4 {
                let at = ((n % 2) * tw, (n / 2) * th);
                assert_eq!(c.convert_in_place(&tile(n), nclx, at.0, at.1), Some(true));
            }
            c
        };
        let stored = lay(0);
        for (turn, orientation) in [(90, 6), (180, 3), (270, 8)] {
            let turned = lay(turn);
            let want = crate::media::pixels::orient(
                Pixels {
                    data: stored.data.clone(),
                    width: sw as u32,
                    height: sh as u32,
                    bands: 3,
                },
                orientation,
            );
            assert_eq!(
                (turned.width, turned.height),
                (want.width as usize, want.height as usize)
            );
            assert_eq!(turned.data, want.data, "turned {turn} degrees");
        }
    }

    #[test]
    fn tiles_are_laid_in_place_and_clipped() {
        let mut canvas = vec![0u8; 3 * 3 * 3];
        // 2 x 2 pixels in rows of 8 bytes (2 of padding).
        let data = vec![9u8; 2 * 8];
        let tile = Tile {
            data: &data,
            stride: 8,
            width: 2,
            height: 2,
        };
        place(&mut canvas, 3, 3, &tile, 2, 2);
        // Only the bottom-right pixel is inside.
        assert_eq!(canvas.iter().filter(|&&v| v == 9).count(), 3);
        assert_eq!(&canvas[24..27], &[9, 9, 9]);
        place(&mut canvas, 3, 3, &tile, 5, 0);
        assert_eq!(canvas.iter().filter(|&&v| v == 9).count(), 3);
    }

    #[test]
    fn files_it_cannot_read_are_left_to_libvips() {
        assert!(Table::read(b"").is_none());
        assert!(Table::read(b"\0\0\0\x10ftypheic\0\0\0\0").is_none());
    }
}
