/* Counting protobuf-c allocator: see pbbudget.h. */
#include "util/pbbudget.h"

#include <stdlib.h>

static void *budget_alloc(void *arg, size_t size)
{
	struct rd_pb_budget *b = arg;

	if (size > b->left) {
		b->spent = true;
		return NULL;
	}
	b->left -= size;
	return malloc(size);
}

static void budget_free(void *arg, void *p)
{
	(void)arg;
	free(p);
}

void rd_pb_budget_init(struct rd_pb_budget *b, size_t budget)
{
	b->a.alloc = budget_alloc;
	b->a.free = budget_free;
	b->a.allocator_data = b;
	b->left = budget;
	b->spent = false;
}
