/*
 * libFuzzer target for the Raft core (make fuzz-raft): the input bytes are
 * decoded into events on a small simulated cluster (3 voters and a spare):
 * ticks, campaigns, proposals, reads, membership changes, transfers,
 * deliveries, drops, duplicates, partitions, crashes with or without losing
 * a pending write, restarts and compactions. After every event the five
 * safety properties are checked (cluster.c) and the core's own assertions
 * are live; a violation aborts, which libFuzzer reports with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rc_cluster *c = malloc(sizeof(*c));
	rc_init(c, 7);
	c->base.pre_vote = size > 0 && (data[0] & 1);
	c->base.check_quorum = size > 0 && (data[0] & 2);
	c->base.max_inflight_msgs = 1 + (size > 0 ? (data[0] >> 2) % 4 : 0);
	c->base.max_msg_bytes = 60;
	uint64_t v[3] = {1, 2, 3};
	for (uint64_t id = 1; id <= 3; id++)
		rc_add(c, id, v, 3);
	rc_add(c, 4, NULL, 0);
	uint64_t k = 0;
	for (size_t i = 1; i + 1 < size && c->violations == 0; i += 2) {
		uint8_t op = data[i] % 16, arg = data[i + 1];
		uint64_t id = 1 + arg % 4;
		struct rd_raft *r = c->nodes[id].up ? c->nodes[id].r : NULL;
		char d[16];
		int l = snprintf(d, sizeof(d), "f%llu", (unsigned long long)++k);
		switch (op) {
		case 0:
		case 1:
			if (r) {
				c->now++;
				rd_raft_tick(r);
			}
			break;
		case 2:
			if (r)
				rd_raft_campaign(r);
			break;
		case 3:
			if (r)
				rd_raft_propose(r, RD_ENTRY_NORMAL, d, (uint32_t)l, NULL);
			break;
		case 4:
			rc_process(c, id);
			break;
		case 5:
		case 6:
			rc_deliver(c, id);
			break;
		case 7:
			if (c->n_net > 0) { /* drop one message */
				size_t j = arg % c->n_net;
				if (c->net[j].held_by == 0) {
					free(c->net[j].m.entries);
					c->net[j] = c->net[--c->n_net];
				}
			}
			break;
		case 8:
			c->cut[id][1 + (arg >> 4) % 4] = !c->cut[id][1 + (arg >> 4) % 4];
			break;
		case 9:
			if (arg & 0x80)
				rc_process_early(c, id); /* then maybe lose it */
			rc_crash(c, id);
			break;
		case 10:
			rc_start(c, id);
			break;
		case 11:
			rc_compact(c, id, 0);
			break;
		case 12:
			if (r)
				rd_raft_propose_conf_change(r, (uint8_t)((arg >> 2) % 4),
				                            1 + (arg >> 4) % 4, NULL, 0,
				                            NULL);
			break;
		case 13:
			if (r)
				rd_raft_transfer_leader(r, 1 + (arg >> 4) % 4);
			break;
		case 14:
			if (r)
				rc_read(c, id, k);
			break;
		case 15:
			if (c->nodes[id].holding)
				rc_finish(c, id);
			else
				rc_process_early(c, id);
			break;
		}
		rc_check(c);
	}
	if (c->violations != 0) {
		fprintf(stderr, "raft-fuzz: %s\n", c->violation);
		abort();
	}
	rc_free(c);
	free(c);
	return 0;
}
