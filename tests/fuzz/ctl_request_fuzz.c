/*
 * libFuzzer target for the local-client request decoder (lib/ctl/request.c)
 * and the socket's framing (lib/util/frame.c): the input is the byte stream
 * a hostile local client could write on the Unix socket. The first byte
 * chooses where it is split into two reads, so that header and payload
 * boundaries fall everywhere. Every complete frame is decoded with the
 * bounded allocator, re-encoded when it decodes, then freed; a BUSY answer
 * is built for it as the socket layer would. Nothing may crash, leak or
 * read out of bounds.
 *
 *   make fuzz-ctl && build/fuzz/ctl_request_fuzz -max_total_time=60
 */
#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctl/request.h"
#include "util/err.h"
#include "util/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that the over-limit path is reachable; the daemon uses 1 MiB. */
#define MAX_FRAME (1u << 16)

static int drain_frames(struct evbuffer *in)
{
	uint32_t len;
	int rv;

	while ((rv = rd_frame_peek(in, MAX_FRAME, &len)) == 0) {
		Raftd__ClientRequest *req = NULL;
		char msg[RD_ERRMSG_SIZE];
		const uint8_t *p;
		uint8_t *resp;
		size_t n;

		evbuffer_drain(in, RD_FRAME_HEADER);
		p = evbuffer_pullup(in, len);
		if (rd_ctl_request_decode(p, len, &req, msg) == 0) {
			size_t packed = raftd__client_request__get_packed_size(req);
			uint8_t *buf = malloc(packed ? packed : 1);
			if (buf != NULL) {
				raftd__client_request__pack(req, buf);
				free(buf);
			}
			resp = rd_ctl_error_response(req->request_id,
			                             RAFTD__ERROR_CODE__BUSY, "busy", &n);
			free(resp);
			rd_ctl_request_free(req);
		}
		evbuffer_drain(in, len);
	}
	return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in;
	size_t split;

	if (size == 0)
		return 0;
	in = evbuffer_new();
	if (in == NULL)
		return 0;
	split = data[0] % size;
	evbuffer_add(in, data + 1, split);
	if (drain_frames(in) != RD_ETOOBIG) {
		evbuffer_add(in, data + 1 + split, size - 1 - split);
		drain_frames(in);
	}
	evbuffer_free(in);
	return 0;
}
