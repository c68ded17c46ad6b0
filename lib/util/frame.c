#include "util/frame.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/err.h"

void rd_frame_header(uint8_t hdr[RD_FRAME_HEADER], uint32_t len)
{
	rd_be32_put(hdr, len);
}

int rd_frame_peek(struct evbuffer *in, size_t max, uint32_t *len)
{
	uint8_t hdr[RD_FRAME_HEADER];
	uint32_t n;

	if (evbuffer_copyout(in, hdr, sizeof hdr) < (ssize_t)sizeof hdr)
		return RD_EAGAIN;
	n = rd_be32_get(hdr);
	if (n > max)
		return RD_ETOOBIG;
	if (evbuffer_get_length(in) < RD_FRAME_HEADER + (size_t)n)
		return RD_EAGAIN;
	*len = n;
	return 0;
}

int rd_frame_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return RD_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 0, RD_ECLOSED when the stream ended before the first byte, RD_EIO. */
static int read_all(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return RD_EIO;
		if (r == 0) {
			errno = ECONNRESET;
			return got == 0 ? RD_ECLOSED : RD_EIO;
		}
		got += (size_t)r;
	}
	return 0;
}

int rd_frame_write_fd(int fd, const uint8_t *buf, size_t len)
{
	uint8_t hdr[RD_FRAME_HEADER];
	int rv;

	if (len > UINT32_MAX)
		return RD_ETOOBIG;
	rd_frame_header(hdr, (uint32_t)len);
	rv = rd_frame_write_all(fd, hdr, sizeof hdr);
	return rv != 0 ? rv : rd_frame_write_all(fd, buf, len);
}

int rd_frame_read_fd(int fd, size_t max, uint8_t **out, size_t *len)
{
	uint8_t hdr[RD_FRAME_HEADER];
	uint32_t n;
	uint8_t *buf;
	int rv;

	rv = read_all(fd, hdr, sizeof hdr);
	if (rv != 0)
		return rv;
	n = rd_be32_get(hdr);
	if (n > max)
		return RD_ETOOBIG;
	buf = malloc(n ? n : 1);
	if (buf == NULL)
		return RD_ENOMEM;
	rv = read_all(fd, buf, n);
	if (rv != 0) {
		free(buf);
		return rv == RD_ECLOSED ? RD_EIO : rv;
	}
	*out = buf;
	*len = n;
	return 0;
}
