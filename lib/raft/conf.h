/*
 * Shared configurations: one immutable copy of each distinct membership,
 * held by reference by every group that has it.
 *
 * A node hosts thousands of groups, nearly all with the same three voters,
 * and each group holds its configuration several times over (the core's
 * latest, previous, applied and compaction-point ones and those of evicted
 * changes, tail.c; the runtime's persisted one; storage's durable ones).
 * A struct rd_conf_state is sized for RD_RAFT_MAX_MEMBERS voters and as
 * many learners, so holders keep a pointer from rd_conf_share instead, and
 * the copy is freed when its last holder releases it.
 *
 * A shared configuration is never written: a change is made on a value
 * copy (rd_raft_conf_apply) and shared again. Two configurations are the
 * same when their voters and learners are equal in order; the lists are
 * compared, never the unused slots.
 *
 * The table is process-wide and guarded by a mutex: groups of several
 * cores (the simulation, a test) and storage may share and release from
 * any thread. Sharing allocates with rd_xcalloc, which aborts on out of
 * memory: a holder that could not record its configuration would count
 * votes under a stale one, so no caller has a safe way to go on.
 */
#ifndef RD_RAFT_CONF_H
#define RD_RAFT_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "raft/types.h"

/* The shared empty configuration (no voters, no learners): what a holder
 * starts with. Sharing an empty configuration returns it; holding and
 * releasing it do nothing. */
extern const struct rd_conf_state rd_conf_none;

/* A shared copy of `cs` (any value, shared or not), with one reference
 * for the caller, who releases it with rd_conf_release. Never NULL. */
const struct rd_conf_state *rd_conf_share(const struct rd_conf_state *cs);

/* One more reference to the shared configuration `shared`; returns it. */
const struct rd_conf_state *rd_conf_hold(const struct rd_conf_state *shared);

/* Drop one reference to `shared` (from rd_conf_share or rd_conf_hold, or
 * rd_conf_none, or NULL: no-op); the last one frees it. */
void rd_conf_release(const struct rd_conf_state *shared);

/* Make *slot (a shared configuration or rd_conf_none) hold a shared copy
 * of `cs` and release what it held. `cs` may be *slot itself. */
void rd_conf_assign(const struct rd_conf_state **slot, const struct rd_conf_state *cs);

/* True when `a` and `b` list the same voters and learners, in order. */
bool rd_conf_equal(const struct rd_conf_state *a, const struct rd_conf_state *b);

/* Distinct configurations shared now (rd_conf_none not counted). */
size_t rd_conf_shared_count(void);

#endif
