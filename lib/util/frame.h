/*
 * Framing shared by the client socket and raftctl: every message is a 4-byte
 * big-endian length followed by that many bytes of protobuf.
 */
#ifndef RD_UTIL_FRAME_H
#define RD_UTIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RD_FRAME_HEADER 4

struct evbuffer;

/* Write the header for a payload of `len` bytes into `hdr`. */
void rd_frame_header(uint8_t hdr[RD_FRAME_HEADER], uint32_t len);

/* Look at the front of `in`: 0 and the payload length in *len when a whole
 * frame is buffered (the caller then drains RD_FRAME_HEADER + *len bytes);
 * RD_EAGAIN when more bytes are needed; RD_ETOOBIG when the announced length
 * exceeds `max` (the stream cannot be resynchronised: close it). */
int rd_frame_peek(struct evbuffer *in, size_t max, uint32_t *len);

/* Blocking helpers for simple clients (raftctl). rd_frame_write_fd writes a
 * whole frame; rd_frame_read_fd reads one into a buffer it mallocs (the caller
 * frees *out). Both return 0, RD_EIO (errno describes it), RD_ECLOSED on a
 * clean end of stream before a frame, or RD_ETOOBIG. */
int rd_frame_write_fd(int fd, const uint8_t *buf, size_t len);
int rd_frame_read_fd(int fd, size_t max, uint8_t **out, size_t *len);

/* Write all `n` bytes of `p` to the blocking descriptor `fd`, again after
 * EINTR and after a short write: 0, or RD_EIO (errno describes it). */
int rd_frame_write_all(int fd, const uint8_t *p, size_t n);

#endif
