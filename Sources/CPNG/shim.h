#ifndef DEFORM_CPNG_SHIM_H
#define DEFORM_CPNG_SHIM_H
/*
 * libpng reports errors by longjmp. A longjmp across Swift frames is undefined behaviour, so every
 * setjmp and every libpng call that can fail live in the two C functions below; Swift sees only a
 * return code and a message.
 *
 * Why not libpng's setjmp-free simplified API (png_image_*): its 16-bit formats are linear light.
 * It converts 16-bit files that carry a gAMA/sRGB chunk to linear, premultiplies 16-bit alpha and
 * writes a gAMA of 1.0, so neither 16-bit RGBA nor 16-bit files made by other programs would come
 * back with the sample values that are stored in the file. Deform wants the stored values (as
 * NumPy-based tools read them), so it uses the low-level API and applies no gamma at all.
 *
 * Memory the caller has to free() is returned through out-parameters; everything allocated after a
 * setjmp sits in a heap-allocated state struct, because automatic variables changed between setjmp
 * and longjmp have indeterminate values afterwards.
 */
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFORM_PNG_MESSAGE_SIZE 256

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define DEFORM_PNG_HOST_IS_BIG_ENDIAN 1
#else
#define DEFORM_PNG_HOST_IS_BIG_ENDIAN 0
#endif

/* Error and warning callbacks. The error pointer is a DEFORM_PNG_MESSAGE_SIZE-byte buffer. */
static inline void deform_png_on_error(png_structp png, png_const_charp message) {
    char *buffer = (char *)png_get_error_ptr(png);
    if (buffer != NULL) {
        snprintf(buffer, DEFORM_PNG_MESSAGE_SIZE, "%s", message != NULL ? message : "unknown libpng error");
    }
    png_longjmp(png, 1);
}

/* Warnings (an sRGB profile libpng dislikes, a bad CRC in an ancillary chunk it then skips) do not
 * change the pixels; printing them to stderr would only clutter the command line. */
static inline void deform_png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/* ---------------------------------------------------------------------------------- decoding */

/** What deform_png_decode returns. `pixels` holds height rows of width * channels samples, top row
 *  first, 1 byte per sample (bit_depth 8) or 2 bytes in host byte order (bit_depth 16); free() it. */
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;          /* 1 (grey), 3 (RGB) or 4 (RGBA) */
    int bit_depth;         /* 8 or 16 */
    int file_bit_depth;    /* as stored: 1, 2, 4, 8 or 16 */
    int file_color_type;   /* PNG_COLOR_TYPE_* as stored */
    unsigned char *pixels;
    char message[DEFORM_PNG_MESSAGE_SIZE];
} deform_png_image;

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    unsigned char *pixels;
    png_bytep *rows;
} deform_png_read_state;

static inline void deform_png_read_bytes(png_structp png, png_bytep out, size_t length) {
    deform_png_read_state *state = (deform_png_read_state *)png_get_io_ptr(png);
    if (length > state->size - state->offset) {
        png_error(png, "unexpected end of file (truncated)");
    }
    memcpy(out, state->data + state->offset, length);
    state->offset += length;
}

/**
 * Decodes the PNG held in `data`, expanding palette, grey + alpha, transparency chunks and bit depths
 * below 8 so the result is 8- or 16-bit grey, RGB or RGBA. Refuses images whose decoded samples would
 * need more than `max_bytes`. Returns 0, or -1 with `out->message` set.
 */
static inline int deform_png_decode(const unsigned char *data, size_t size, size_t max_bytes, deform_png_image *out) {
    memset(out, 0, sizeof *out);
    if (data == NULL || size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "no PNG signature");
        return -1;
    }
    deform_png_read_state *state = (deform_png_read_state *)calloc(1, sizeof *state);
    if (state == NULL) {
        snprintf(out->message, sizeof out->message, "out of memory");
        return -1;
    }
    state->data = data;
    state->size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out->message, deform_png_on_error, deform_png_on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        if (png != NULL) png_destroy_read_struct(&png, NULL, NULL);
        free(state);
        snprintf(out->message, sizeof out->message, "libpng could not allocate its state");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(state->pixels);
        free(state->rows);
        free(state);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, state, deform_png_read_bytes);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int depth = 0, color = 0;
    png_get_IHDR(png, info, &width, &height, &depth, &color, NULL, NULL, NULL);
    out->file_bit_depth = depth;
    out->file_color_type = color;
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (has_trns) png_set_tRNS_to_alpha(png);
    /* Grey with alpha has no place among 1, 3 and 4 channels: it becomes RGBA. */
    if ((color & PNG_COLOR_MASK_COLOR) == 0 && ((color & PNG_COLOR_MASK_ALPHA) != 0 || has_trns)) {
        png_set_gray_to_rgb(png);
    }
    if (depth == 16 && !DEFORM_PNG_HOST_IS_BIG_ENDIAN) png_set_swap(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((channels != 1 && channels != 3 && channels != 4) || (bit_depth != 8 && bit_depth != 16)) {
        char reason[DEFORM_PNG_MESSAGE_SIZE];
        snprintf(reason, sizeof reason, "unexpected decoded layout: %d channels of %d bits", channels, bit_depth);
        png_error(png, reason);
    }
    if (row_bytes == 0 || height == 0 || row_bytes > max_bytes / height) {
        char reason[DEFORM_PNG_MESSAGE_SIZE];
        snprintf(reason, sizeof reason, "%u x %u pixels with %d channels of %d bits need more than the %zu bytes this reader allows",
                 (unsigned)width, (unsigned)height, channels, bit_depth, max_bytes);
        png_error(png, reason);
    }
    state->pixels = (unsigned char *)malloc(row_bytes * height);
    state->rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (state->pixels == NULL || state->rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) state->rows[y] = state->pixels + (size_t)y * row_bytes;
    png_read_image(png, state->rows);
    /* Reading up to IEND makes a file cut off after its image data an error too. */
    png_read_end(png, NULL);

    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = bit_depth;
    out->pixels = state->pixels;
    free(state->rows);
    free(state);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ---------------------------------------------------------------------------------- encoding */

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
    png_bytep *rows;
} deform_png_write_state;

static inline void deform_png_write_bytes(png_structp png, png_bytep bytes, size_t length) {
    deform_png_write_state *state = (deform_png_write_state *)png_get_io_ptr(png);
    if (length > state->capacity - state->size) {
        size_t capacity = state->capacity > 0 ? state->capacity : 4096;
        while (length > capacity - state->size) {
            if (capacity > SIZE_MAX / 2) png_error(png, "output too large");
            capacity *= 2;
        }
        unsigned char *grown = (unsigned char *)realloc(state->data, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        state->data = grown;
        state->capacity = capacity;
    }
    memcpy(state->data + state->size, bytes, length);
    state->size += length;
}

static inline void deform_png_flush(png_structp png) { (void)png; }

/**
 * Encodes `height` rows of `width * channels` samples (1 byte each for bit_depth 8, 2 bytes in host
 * byte order for bit_depth 16) as a non-interlaced PNG; channels 1, 2, 3, 4 mean grey, grey + alpha,
 * RGB, RGBA. `compression_level` is zlib's 0-9. On success returns 0 and a malloc'd buffer in
 * `*out_data` (free() it); on failure returns -1 with `message` (DEFORM_PNG_MESSAGE_SIZE bytes) set.
 */
static inline int deform_png_encode(const unsigned char *pixels, uint32_t width, uint32_t height, int channels,
                                    int bit_depth, int compression_level,
                                    unsigned char **out_data, size_t *out_size, char *message) {
    *out_data = NULL;
    *out_size = 0;
    message[0] = 0;
    static const int color_types[5] = {
        -1, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA
    };
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width == 0 || height == 0 || pixels == NULL) {
        snprintf(message, DEFORM_PNG_MESSAGE_SIZE, "cannot encode %u x %u pixels with %d channels of %d bits",
                 (unsigned)width, (unsigned)height, channels, bit_depth);
        return -1;
    }
    size_t row_bytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
    deform_png_write_state *state = (deform_png_write_state *)calloc(1, sizeof *state);
    png_bytep *rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (state == NULL || rows == NULL) {
        free(state);
        free(rows);
        snprintf(message, DEFORM_PNG_MESSAGE_SIZE, "out of memory");
        return -1;
    }
    /* libpng copies each row before transforming it (png_set_swap), so the input stays untouched. */
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * row_bytes);
    state->rows = rows;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, deform_png_on_error, deform_png_on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        if (png != NULL) png_destroy_write_struct(&png, NULL);
        free(rows);
        free(state);
        snprintf(message, DEFORM_PNG_MESSAGE_SIZE, "libpng could not allocate its state");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(state->data);
        free(state->rows);
        free(state);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, state, deform_png_write_bytes, deform_png_flush);
    png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, width, height, bit_depth, color_types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    /* PNG stores 16-bit samples big-endian. */
    if (bit_depth == 16 && !DEFORM_PNG_HOST_IS_BIG_ENDIAN) png_set_swap(png);
    png_write_image(png, state->rows);
    png_write_end(png, NULL);

    *out_data = state->data;
    *out_size = state->size;
    free(state->rows);
    free(state);
    png_destroy_write_struct(&png, &info);
    return 0;
}

#endif
