// nodejs/http-parser 2.9 from Debian's libhttp-parser-dev (scripts/install-deps.sh installs it):
// the HTTP/1.1 request parser of Examples/SearchService. It has no pkg-config file, so the
// module map links `http_parser` by name.
#ifndef CHTTPPARSER_SHIM_H
#define CHTTPPARSER_SHIM_H

#include <http_parser.h>

#endif
