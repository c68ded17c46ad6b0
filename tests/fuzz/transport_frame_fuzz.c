/*
 * libFuzzer target for the peer frame decoder (lib/transport/wire.c): the
 * input is a stream of bytes as a hostile peer could send on a QUIC stream.
 * The first byte chooses where the stream is split into two deliveries, so
 * that header and payload boundaries fall everywhere. Every complete frame
 * is decoded and validated, then freed. The decoder must never crash, leak
 * or read out of bounds; errors are the expected outcome for most inputs.
 *
 *   make fuzz-transport && build/fuzz/transport_frame_fuzz -max_total_time=60
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>

#include "transport/wire.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_frame(void *arg, const uint8_t *p, size_t n)
{
	Raftd__PeerFrame *f = NULL;
	char msg[RD_ERRMSG_SIZE];

	(void)arg;
	if (rd_wire_decode(p, n, &f, msg) == 0) {
		/* Re-encoding a decoded frame must work and stay within bounds. */
		uint8_t *buf = NULL;
		size_t len = 0;
		if (rd_wire_encode(f, 1u << 20, &buf, &len, msg) == 0)
			free(buf);
		rd_wire_free(f);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd_wire_reader r;
	size_t split;

	if (size == 0)
		return 0;
	split = data[0] % size;
	/* A small limit makes the over-limit path reachable. */
	rd_wire_reader_init(&r, 1u << 16);
	if (rd_wire_reader_feed(&r, data + 1, split, on_frame, NULL) == 0)
		rd_wire_reader_feed(&r, data + 1 + split, size - 1 - split, on_frame,
		                    NULL);
	rd_wire_reader_close(&r);
	return 0;
}
