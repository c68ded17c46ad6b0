/*
 * QUIC packets a hostile stranger sends, for the transport's and the
 * daemon's hostile-input tests. Linked into every test binary
 * (tests/common/).
 */
#ifndef RD_TESTS_COMMON_QUIC_H
#define RD_TESTS_COMMON_QUIC_H

#include <stddef.h>
#include <stdint.h>

/* Write into `p` (`size` >= 1200 bytes) a datagram that passes for a
 * client's first Initial (RFC 9000 §17.2.2): header fields right, random
 * connection ids and a random payload that never decrypts. Returns its
 * length, 1200 (the minimum of RFC 9000 §14.1). */
size_t rd_t_junk_initial(uint8_t *p, size_t size);

#endif
