/*
 * The allocator each QUIC connection hands to ngtcp2: the C library's, with
 * every block kept on a per-connection list so that whatever ngtcp2 still
 * holds when the connection is deleted is freed with it.
 *
 * Why: ngtcp2 0.12.1 decides how to release a STREAM frame chain from the
 * frame's current number of data vectors, not from how the chain was
 * allocated. A chain made from the allocator because it had many vectors
 * (ngtcp2_frame_chain_stream_datacnt_objalloc_new, typically when lost
 * stream data is merged for retransmission) and later cut below that count
 * (partly acknowledged, split) goes back to the connection's object pool
 * instead of to free(); the pool forgets it when the connection goes. Fixed
 * in later ngtcp2 releases; here the bytes are lost once per connection
 * that had such a chain, so connections that lose packets (partitions)
 * leaked a few kilobytes each and LeakSanitizer failed the daemon's exit.
 *
 * Happy path: ngtcp2 frees every block itself and rd_t_mem_release finds
 * the list empty. Failure modes: none beyond malloc's (NULL, as ngtcp2
 * expects).
 */
#include <stddef.h>
#include <stdlib.h>

#include "transport/internal.h"

/* The header before each block: list links, padded to malloc's alignment. */
union hdr {
	struct rd_t_blk l;
	max_align_t align;
};

static void link_blk(struct rd_t_mem *m, union hdr *h)
{
	h->l.prev = &m->head;
	h->l.next = m->head.next;
	m->head.next->prev = &h->l;
	m->head.next = &h->l;
	m->live++;
}

static void unlink_blk(struct rd_t_mem *m, union hdr *h)
{
	h->l.prev->next = h->l.next;
	h->l.next->prev = h->l.prev;
	m->live--;
}

static void *mem_malloc(size_t size, void *ud)
{
	if (size > SIZE_MAX - sizeof(union hdr))
		return NULL;
	union hdr *h = malloc(sizeof *h + size);
	if (h == NULL)
		return NULL;
	link_blk(ud, h);
	return h + 1;
}

static void mem_free(void *ptr, void *ud)
{
	if (ptr == NULL)
		return;
	union hdr *h = (union hdr *)ptr - 1;
	unlink_blk(ud, h);
	free(h);
}

static void *mem_calloc(size_t nmemb, size_t size, void *ud)
{
	if (size != 0 && nmemb > (SIZE_MAX - sizeof(union hdr)) / size)
		return NULL;
	union hdr *h = calloc(1, sizeof *h + nmemb * size);
	if (h == NULL)
		return NULL;
	link_blk(ud, h);
	return h + 1;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
	if (ptr == NULL)
		return mem_malloc(size, ud);
	if (size > SIZE_MAX - sizeof(union hdr))
		return NULL;
	union hdr *h = (union hdr *)ptr - 1;
	unlink_blk(ud, h);
	union hdr *nh = realloc(h, sizeof *h + size);
	if (nh == NULL) {
		link_blk(ud, h); /* the old block stays valid */
		return NULL;
	}
	link_blk(ud, nh);
	return nh + 1;
}

void rd_t_mem_init(struct rd_t_mem *m)
{
	m->head.prev = m->head.next = &m->head;
	m->live = 0;
	m->mem.user_data = m;
	m->mem.malloc = mem_malloc;
	m->mem.free = mem_free;
	m->mem.calloc = mem_calloc;
	m->mem.realloc = mem_realloc;
}

size_t rd_t_mem_release(struct rd_t_mem *m)
{
	size_t n = m->live;
	while (m->head.next != &m->head) {
		union hdr *h = (union hdr *)(void *)m->head.next;
		unlink_blk(m, h);
		free(h);
	}
	return n;
}
