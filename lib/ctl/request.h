/*
 * Decoding of one local-client request frame (proto/raftd.proto,
 * ClientRequest) and the answers the socket layer gives by itself.
 *
 * A request is decoded with a bounded allocator (util/pbbudget.h), so a
 * frame of the maximum size cannot make the daemon allocate more than
 * RD_CTL_DECODE_BUDGET(len) while unpacking it. The fuzzer
 * tests/fuzz/ctl_request_fuzz.c drives rd_ctl_request_decode directly.
 */
#ifndef RD_CTL_REQUEST_H
#define RD_CTL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftd.pb-c.h"

/* Requests hold a few keys and values: ~1x their size, plus structs. */
#define RD_CTL_DECODE_BUDGET(len) ((size_t)(len)*4 + (1u << 20))

/* Decode `len` bytes. On success *out is owned by the caller, released
 * with rd_ctl_request_free. Returns 0, or RD_EPROTO with the reason in
 * `msg` (does not decode, over the allocation budget, no operation set). */
int rd_ctl_request_decode(const uint8_t *buf, size_t len, Raftd__ClientRequest **out,
                          char *msg);

/* Free a request rd_ctl_request_decode returned (NULL is a no-op). */
void rd_ctl_request_free(Raftd__ClientRequest *req);

/* Encode a response holding only `request_id`, `code` and `text` into a
 * malloc'd buffer (caller frees). Returns NULL when out of memory. */
uint8_t *rd_ctl_error_response(uint64_t request_id, Raftd__ErrorCode code,
                               const char *text, size_t *len);

struct rd_ctl_conn;

/* Pack `resp` and answer the request `conn` holds with it (rd_ctl_reply,
 * which ends the request); when out of memory, end it unanswered
 * (rd_ctl_release). `resp` stays the caller's. */
void rd_ctl_reply_response(struct rd_ctl_conn *conn, Raftd__ClientResponse *resp);

/* Whether a request of kind `op` writes (is proposed to a group's log):
 * the kinds a client session (client_id, sequence) makes exactly-once,
 * Raft thesis §6.3. */
bool rd_ctl_request_is_write(Raftd__ClientRequest__OpCase op);

#endif
