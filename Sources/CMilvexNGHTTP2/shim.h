// nghttp2 (libnghttp2-dev), used in its I/O-agnostic mode: bytes in, bytes out.
#include <nghttp2/nghttp2.h>
