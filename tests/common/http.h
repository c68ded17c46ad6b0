/*
 * HTTP/1.1 against the admin server (lib/ctl/admin.c) from a test: one
 * request per connection (Connection: close), the answer read to EOF.
 * Linked into every test binary (tests/common/).
 */
#ifndef RD_TESTS_COMMON_HTTP_H
#define RD_TESTS_COMMON_HTTP_H

#include <stddef.h>

/* A TCP connection to 127.0.0.1:port; -1 (errno set) when it is refused. */
int rd_t_tcp_connect(int port);

/* Send `req` whole on a new connection to 127.0.0.1:port and read the
 * answer to EOF into `out` (NUL-terminated, cut at `size` - 1 bytes).
 * Returns the status code, 0 when the answer has none, -1 (errno set)
 * when the connection is refused. */
int rd_t_http_raw(int port, const char *req, char *out, size_t size);

/* GET `path` as rd_t_http_raw does. */
int rd_t_http_get(int port, const char *path, char *out, size_t size);

#endif
