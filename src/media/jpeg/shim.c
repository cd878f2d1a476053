/*
 * filegate's direct JPEG path: libjpeg (Debian's libjpeg62-turbo, the library libvips
 * itself links) through its own API, for the two things libvips cannot do for a
 * thumbnail:
 *   - decode at exactly the DCT scale asked (1/1, 1/2, 1/4, 1/8) with nothing around it
 *     (libvips' pipeline costs ~2 ms of threads and regions per small image);
 *   - for a progressive JPEG decoded at 1/8, stop once the DC coefficients of every
 *     component are complete: the 1/8 IDCT reads only the DC coefficient, so the rest of
 *     the file (the AC scans, most of its bytes and time) changes nothing.
 * And a plain JPEG encoder for the small result. Errors use libjpeg's documented
 * setjmp/longjmp recovery, which only C can do; Rust sees a status and a message.
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
 * Encodes `width` x `height` pixels of `components` (1 grey or 3 RGB) at `quality`,
 * Huffman tables optimized when `optimize`, no metadata. Returns 0 with a malloc'd
 * `*out` of `*out_len` bytes, or -1 with `message`.
 */
int fg_jpeg_encode(const unsigned char *pixels, int width, int height, int components,
                   int quality, int optimize, unsigned char **out, unsigned long *out_len,
                   char *message)
{
    struct jpeg_compress_struct cinfo;
    struct fg_error err;
    /* libjpeg's memory destination writes (and may move) the buffer through these;
     * they live on the heap so a longjmp cannot leave them indeterminate. */
    struct { unsigned char *buffer; unsigned long size; } *volatile dest = NULL;

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
        if (dest != NULL) {
            free(dest->buffer);
            free(dest);
        }
        return -1;
    }
    dest = calloc(1, sizeof *dest);
    if (dest == NULL) {
        snprintf(message, FG_MESSAGE_MAX, "out of memory");
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &dest->buffer, &dest->size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.optimize_coding = optimize ? TRUE : FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    size_t row = (size_t)width * (size_t)components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1];
        rows[0] = (JSAMPROW)(pixels + row * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = dest->buffer;
    *out_len = dest->size;
    free(dest);
    return 0;
}

/* Frees what the functions above allocated. */
void fg_jpeg_free(void *p)
{
    free(p);
}
