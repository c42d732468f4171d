#ifndef ESAYLOV_CZLIB_H
#define ESAYLOV_CZLIB_H
#include <zlib.h>

/* zlib's inflateInit2 and deflateInit2 are macros; Swift needs symbols. */
int esaylov_inflate_init(z_stream *strm, int window_bits);
int esaylov_deflate_init(z_stream *strm, int level, int window_bits);
#endif
