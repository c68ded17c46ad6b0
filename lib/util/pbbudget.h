/*
 * A protobuf-c allocator with a budget. protobuf-c builds one struct per
 * embedded message and one array per repeated field before any rule of ours
 * can be checked, so a payload of empty sub-messages ("1a 00" repeated)
 * costs ~100 bytes of memory per 2 bytes of input. Unpacking through this
 * allocator fails (protobuf-c returns NULL) once `budget` bytes have been
 * handed out. Freeing is plain free(): what was unpacked may be released
 * with free_unpacked(msg, NULL).
 */
#ifndef RD_UTIL_PBBUDGET_H
#define RD_UTIL_PBBUDGET_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

struct rd_pb_budget {
	ProtobufCAllocator a; /* pass &b->a to *_unpack */
	size_t left;
	bool spent; /* an allocation was refused */
};

/* Make *b an allocator that hands out `budget` bytes in all; *b must stay
 * where it is while anything unpacks through b->a. */
void rd_pb_budget_init(struct rd_pb_budget *b, size_t budget);

#endif
