/*
 * Commit streams (proto/raftd.proto, "Commit streams"): subscriptions to the
 * applied entries of groups, and the per-group journal they read from
 * (storage/journal.h).
 *
 * The driver calls rd_subs_journal for every entry it applies, in the
 * iteration's batch (so the journal holds exactly what applied, and a crash
 * that loses an apply loses its record too, until the replay of the
 * committed log writes both again), and rd_subs_applied after the batch is
 * written; subscribers are then sent what applied. Delivery always reads the journal from
 * each subscription's cursor, so a subscription never sees a gap or a
 * duplicate, whichever node leads: it follows the local apply.
 */
#ifndef RD_MULTIRAFT_SUBSCRIBE_H
#define RD_MULTIRAFT_SUBSCRIBE_H

#include <stdint.h>

#include "raft/types.h"
#include "raftd.pb-c.h"
#include "storage/storage.h"

struct rd_node;
struct rd_group;
struct rd_ctl_conn;
struct rd_subs;

enum rd_sub_kind { RD_SUB_GROUP, RD_SUB_ALL, RD_SUB_META, RD_SUB_WATCH, RD_SUB_KINDS };

struct rd_subs_stats {
	uint64_t open[RD_SUB_KINDS];
	uint64_t delivered;
	uint64_t cut_off;
};

/* Load every hosted group's journal figures. Returns 0 or an RD_E* code
 * (a corrupt journal record) with a message. */
int rd_subs_start(struct rd_node *n, char *msg);

/* Read the journal bounds of every group now hosted (again): for groups
 * opened after rd_subs_start (membership.c, founding after asking). */
int rd_subs_scan(struct rd_node *n, char *msg);

/* Free the subscriptions (their connections are gone) and the figures. */
void rd_subs_free(struct rd_node *n);

/* Journal applied entry `e` of `g` with its result, in n->batch. */
void rd_subs_journal(struct rd_node *n, struct rd_group *g, const struct rd_entry *e,
                     const struct rd_kv_result *res);

/* The iteration's batch is durable: trim journals past their retention
 * (into the next batch) and send subscribers what they may have. */
void rd_subs_applied(struct rd_node *n);

/* `group` installed a snapshot: its journal restarts after `index`. */
void rd_subs_snapshot_installed(struct rd_node *n, uint64_t group, uint64_t index);

/* ClientRequest.subscribe / .credit on `conn`. The subscribe request's
 * reference is held until the stream ends; credit's is released at once. */
void rd_subs_subscribe(struct rd_node *n, struct rd_ctl_conn *conn,
                       const Raftd__ClientRequest *req);
void rd_subs_credit(struct rd_node *n, struct rd_ctl_conn *conn,
                    const Raftd__ClientRequest *req);

/* End every subscription with SHUTTING_DOWN. */
void rd_subs_shutdown(struct rd_node *n);

/* Figures for /metrics: the counters, and the journal bytes of `group`. */
void rd_subs_stats(const struct rd_node *n, struct rd_subs_stats *out);
uint64_t rd_subs_journal_bytes(const struct rd_node *n, uint64_t group);

#endif
