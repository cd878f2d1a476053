/*
 * filegate's direct JPEG path: libjpeg (Debian's libjpeg62-turbo, the library libvips
 * itself links) through its own API, for the two things libvips cannot do for a
 * thumbnail:
 *   - decode at exactly the DCT scale asked (1/1, 1/2, 1/4, 1/8) with nothing around it
 *     (libvips' pipeline costs ~2 ms of threads and regions per small image);
 *   - for a progressive JPEG decoded at 1/8, stop once the DC coefficients of every
 *     component are complete: the 1/8 IDCT reads only the DC coefficient, so the rest of
 *     the file (the AC scans, most of its bytes and time) changes nothing.
 * And a plain JPEG encoder for the result (a large one's Huffman tables made from a
 * sample of it). Errors use libjpeg's documented setjmp/longjmp recovery, which only C
 * can do; Rust sees a status and a message.
 */

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#define FG_MESSAGE_MAX 200

struct fg_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[FG_MESSAGE_MAX];
};

static void fg_error_exit(j_common_ptr cinfo)
{
    struct fg_error *err = (struct fg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(err->message, sizeof err->message, "%s", text);
    longjmp(err->jump, 1);
}

/* Warnings are ignored (as libvips' fail_on=truncated does) except the one that says
 * the data ended early: a truncated source is an error, not a grey half image. */
static void fg_emit_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        fg_error_exit(cinfo);
}

/* What a decode produced. */
typedef struct {
    unsigned char *pixels;  /* width * height * components bytes, malloc'd */
    int width;
    int height;
    int components;         /* 1 grey, 3 RGB, 4 CMYK */
    int dc_only;            /* 1: stopped after the DC scans */
    char message[FG_MESSAGE_MAX];
} fg_decoded;

/* Whether every component's DC coefficient is known to its last bit but one
 * (progressive, buffered mode: coef_bits[c][0] is -1 before any DC data, then the bits
 * still missing). libjpeg's own progression (libvips' `interlace`, Photoshop's) sends
 * the DC with its last bit held back (Al=1) first and that bit only after most of the
 * AC data; without it a block's mean is off by at most one quantization step of the DC
 * (under one grey level at the usual qualities), so the first DC scan is enough. */
static int fg_dc_complete(j_decompress_ptr cinfo)
{
    if (cinfo->coef_bits == NULL)
        return 0;
    for (int c = 0; c < cinfo->num_components; c++) {
        int missing = cinfo->coef_bits[c][0];
        if (missing < 0 || missing > 1)
            return 0;
    }
    return 1;
}

/*
 * Decodes `buf` at 1/`denom` (1, 2, 4 or 8). With `dc_only` set, a progressive source
 * decoded at 1/8 stops after its DC scans. Returns 0, or -1 with `out->message`.
 */
int fg_jpeg_decode(const unsigned char *buf, size_t len, int denom, int dc_only,
                   fg_decoded *out)
{
    struct jpeg_decompress_struct cinfo;
    struct fg_error err;
    unsigned char *volatile pixels = NULL;

    memset(out, 0, sizeof *out);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = fg_error_exit;
    err.pub.emit_message = fg_emit_message;
    err.message[0] = '\0';
    if (setjmp(err.jump)) {
        snprintf(out->message, sizeof out->message, "%s", err.message);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        break;
    default:
        cinfo.out_color_space = JCS_RGB;
        break;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)denom;
    /* Block smoothing invents AC coefficients for a partial progressive image; the
     * 1/8 IDCT reads none, and a full decode has them all. */
    cinfo.do_block_smoothing = FALSE;
    int stop_after_dc = dc_only && denom == 8 && cinfo.progressive_mode;
    cinfo.buffered_image = stop_after_dc ? TRUE : FALSE;
    jpeg_start_decompress(&cinfo);

    size_t row = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    pixels = malloc(row * cinfo.output_height);
    if (pixels == NULL) {
        snprintf(out->message, sizeof out->message, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }

    if (stop_after_dc) {
        int status;
        do {
            status = jpeg_consume_input(&cinfo);
        } while (status != JPEG_REACHED_EOI && status != JPEG_SUSPENDED &&
                 !(status == JPEG_SCAN_COMPLETED && fg_dc_complete(&cinfo)));
        if (!fg_dc_complete(&cinfo)) {
            snprintf(out->message, sizeof out->message,
                     "the image ends before its DC scans are complete");
            jpeg_destroy_decompress(&cinfo);
            free(pixels);
            return -1;
        }
        jpeg_start_output(&cinfo, cinfo.input_scan_number);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1];
        rows[0] = pixels + row * cinfo.output_scanline;
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            snprintf(out->message, sizeof out->message, "the image ends early");
            jpeg_destroy_decompress(&cinfo);
            free(pixels);
            return -1;
        }
    }
    /* Photoshop writes CMYK inverted and says so with its Adobe marker (as libvips
     * reads it too). */
    if (cinfo.out_color_space == JCS_CMYK && cinfo.saw_Adobe_marker) {
        size_t n = row * cinfo.output_height;
        for (size_t i = 0; i < n; i++)
            pixels[i] = (unsigned char)(255 - pixels[i]);
    }
    if (stop_after_dc) {
        jpeg_finish_output(&cinfo);
        /* The AC scans are not read: abort instead of finishing. */
        jpeg_abort_decompress(&cinfo);
    } else {
        jpeg_finish_decompress(&cinfo);
    }

    out->pixels = pixels;
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->components = cinfo.output_components;
    out->dc_only = stop_after_dc;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/*
 * libjpeg's builder of optimal Huffman tables from symbol counts (jchuff.c): exported
 * by every libjpeg since IJG 6 (and libjpeg-turbo's version script), though only its
 * internal header declares it.
 */
EXTERN(void) jpeg_gen_optimal_table(j_compress_ptr cinfo, JHUFF_TBL *htbl, long freq[]);

/* What an encode holds on the heap (so that a longjmp cannot leave it indeterminate):
 * the memory destination's buffer, written and perhaps moved by libjpeg, and the
 * sample the Huffman tables are made from. */
struct fg_encoding {
    unsigned char *buffer;
    unsigned long size;
    unsigned char *sample;
};

/* About how many pixels a sample for Huffman tables has (the picture's / `every`). */
#define FG_SAMPLE_PIXELS (1L << 20)

/*
 * How sparsely to sample a picture for its Huffman tables: 1 in `every` of its blocks,
 * or 0 to optimise over the whole picture. libjpeg's optimisation stores every
 * coefficient of the picture and walks them twice (a 12 MP encode: 55-73 ms, against
 * 27-31 ms without it); tables made from a ~1 MP sample code the whole picture within
 * 0.3% of the optimal size (docs/decisions.md), for the sample's cost.
 */
static int fg_sample_every(int width, int height)
{
    long every = (long)width * (long)height / FG_SAMPLE_PIXELS;
    return every >= 2 ? (int)every : 0;
}

static void fg_set_up(j_compress_ptr cinfo, int width, int height, int components,
                      int quality)
{
    cinfo->image_width = (JDIMENSION)width;
    cinfo->image_height = (JDIMENSION)height;
    cinfo->input_components = components;
    cinfo->in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
}

/* Rows of `width` x `components` bytes of `pixels` from `cinfo`'s next scanline on. */
static void fg_write_all(j_compress_ptr cinfo, const unsigned char *pixels, size_t row)
{
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW rows[1];
        rows[0] = (JSAMPROW)(pixels + row * cinfo->next_scanline);
        jpeg_write_scanlines(cinfo, rows, 1);
    }
}

/*
 * `table` (made from a sample) able to code every symbol a baseline 8-bit scan can
 * hold: its symbols keep their code lengths (a frequency of 2^(24 - length) each gives
 * them back), the ones the sample never saw get a frequency of 1 (the longest codes).
 * A symbol without a code would make libjpeg write a corrupt scan.
 */
static void fg_complete_table(j_compress_ptr cinfo, JHUFF_TBL *table, int dc)
{
    long freq[257];
    int k = 0;
    memset(freq, 0, sizeof freq);
    for (int length = 1; length <= 16; length++)
        for (int i = 0; i < table->bits[length] && k < 256; i++, k++)
            freq[table->huffval[k]] = 1L << (24 - length);
    if (dc) {
        /* Difference categories 0-11. */
        for (int s = 0; s <= 11; s++)
            if (freq[s] == 0)
                freq[s] = 1;
    } else {
        /* End of block, a run of 16 zeros, and each run 0-15 before a size 1-10. */
        for (int run = 0; run < 16; run++)
            for (int size = run == 0 || run == 15 ? 0 : 1; size <= 10; size++)
                if (freq[run * 16 + size] == 0)
                    freq[run * 16 + size] = 1;
    }
    jpeg_gen_optimal_table(cinfo, table, freq);
}

/*
 * Huffman tables for `pixels` made by libjpeg's optimisation over a sample of 1 in
 * `every` of its blocks: each 16-row band gives a 1/`every`-wide stretch, the stretches
 * staggered across the bands (whole rows of bands missed a sky or a face). Written to
 * `dc` and `ac` (tables 0 and 1); `state->sample` and the sample's output are freed.
 * Returns 0 when the sample could not be allocated (then the caller optimises whole).
 */
static int fg_sample_tables(j_compress_ptr cinfo, struct fg_encoding *state,
                            const unsigned char *pixels, int width, int height,
                            int components, int quality, int every,
                            JHUFF_TBL dc[2], JHUFF_TBL ac[2])
{
    int stretch = (width / every + 15) / 16 * 16;
    if (stretch < 16 || stretch > width)
        stretch = width;
    size_t row = (size_t)width * (size_t)components;
    size_t sample_row = (size_t)stretch * (size_t)components;
    state->sample = malloc(sample_row * (size_t)height);
    if (state->sample == NULL)
        return 0;
    for (int y = 0; y < height; y++) {
        long x = (long)((y / 16 * 5) % every) * stretch;
        if (x + stretch > width)
            x = width - stretch;
        memcpy(state->sample + sample_row * (size_t)y,
               pixels + row * (size_t)y + (size_t)x * (size_t)components, sample_row);
    }
    jpeg_mem_dest(cinfo, &state->buffer, &state->size);
    fg_set_up(cinfo, stretch, height, components, quality);
    cinfo->optimize_coding = TRUE;
    jpeg_start_compress(cinfo, TRUE);
    fg_write_all(cinfo, state->sample, sample_row);
    jpeg_finish_compress(cinfo);
    free(state->sample);
    state->sample = NULL;
    free(state->buffer);
    state->buffer = NULL;
    state->size = 0;
    /* The optimisation wrote its tables into the object's (grey uses table 0 only). */
    for (int i = 0; i < 2; i++) {
        dc[i] = *cinfo->dc_huff_tbl_ptrs[i];
        ac[i] = *cinfo->ac_huff_tbl_ptrs[i];
    }
    return 1;
}

/*
 * Encodes `width` x `height` pixels of `components` (1 grey or 3 RGB) at `quality`,
 * Huffman tables optimized when `optimize` (from a sample, for a large picture: see
 * fg_sample_every), no metadata. Returns 0 with a malloc'd `*out` of `*out_len`
 * bytes, or -1 with `message`.
 */
int fg_jpeg_encode(const unsigned char *pixels, int width, int height, int components,
                   int quality, int optimize, unsigned char **out, unsigned long *out_len,
                   char *message)
{
    struct jpeg_compress_struct cinfo;
    struct fg_error err;
    struct fg_encoding *volatile state = NULL;
    JHUFF_TBL dc[2], ac[2];

    *out = NULL;
    *out_len = 0;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = fg_error_exit;
    err.pub.emit_message = fg_emit_message;
    err.message[0] = '\0';
    if (setjmp(err.jump)) {
        snprintf(message, FG_MESSAGE_MAX, "%s", err.message);
        jpeg_destroy_compress(&cinfo);
        if (state != NULL) {
            free(state->buffer);
            free(state->sample);
            free(state);
        }
        return -1;
    }
    state = calloc(1, sizeof *state);
    if (state == NULL) {
        snprintf(message, FG_MESSAGE_MAX, "out of memory");
        return -1;
    }
    jpeg_create_compress(&cinfo);
    int every = optimize ? fg_sample_every(width, height) : 0;
    int sampled = every > 0 && fg_sample_tables(&cinfo, state, pixels, width, height,
                                                components, quality, every, dc, ac);
    jpeg_mem_dest(&cinfo, &state->buffer, &state->size);
    fg_set_up(&cinfo, width, height, components, quality);
    if (sampled) {
        for (int i = 0; i < (components == 1 ? 1 : 2); i++) {
            *cinfo.dc_huff_tbl_ptrs[i] = dc[i];
            fg_complete_table(&cinfo, cinfo.dc_huff_tbl_ptrs[i], 1);
            *cinfo.ac_huff_tbl_ptrs[i] = ac[i];
            fg_complete_table(&cinfo, cinfo.ac_huff_tbl_ptrs[i], 0);
        }
    }
    cinfo.optimize_coding = optimize && !sampled ? TRUE : FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    fg_write_all(&cinfo, pixels, (size_t)width * (size_t)components);
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = state->buffer;
    *out_len = state->size;
    free(state);
    return 0;
}

/* Frees what the functions above allocated. */
void fg_jpeg_free(void *p)
{
    free(p);
}
