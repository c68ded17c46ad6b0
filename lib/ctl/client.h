/*
 * The client's side of the local socket (raftctl, tests, benchmarks): a
 * ClientRequest (proto/raftd.proto) per frame (util/frame.h), written on a
 * blocking descriptor. The daemon's side is ctl/socket.h and request.h.
 */
#ifndef RD_CTL_CLIENT_H
#define RD_CTL_CLIENT_H

#include <stdint.h>

#include "raftd.pb-c.h"

/* Pack `req` and write it to `fd` as one frame. Returns 0, RD_ENOMEM, or
 * rd_frame_write_fd's error (RD_EIO with errno set). `req` is only read. */
int rd_ctl_send_request(int fd, const Raftd__ClientRequest *req);

/* Grant subscription `subscription` `credit` more entries: a CreditRequest
 * sent as request `request_id` with rd_ctl_send_request (same returns). */
int rd_ctl_send_credit(int fd, uint64_t request_id, uint64_t subscription,
                       uint32_t credit);

#endif
