#include "czlib.h"

int esaylov_inflate_init(z_stream *strm, int window_bits) {
    return inflateInit2(strm, window_bits);
}

int esaylov_deflate_init(z_stream *strm, int level, int window_bits) {
    return deflateInit2(strm, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
