#include "helpers.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/log.h"
#include "util/clock.h"

static void on_batch(void *arg, uint64_t peer, const Raftd__RaftBatch *b)
{
	struct tnode *n = arg;

	n->batches++;
	for (size_t i = 0; i < b->n_messages; i++) {
		uint64_t idx = b->messages[i]->index;
		if (peer <= TN_MAX) {
			if (idx != n->next_index[peer])
				n->out_of_order = true;
			n->next_index[peer] = idx + 1;
		}
		n->msgs++;
	}
	if (n->remove_on_batch)
		rd_transport_peer_remove(n->t, peer);
}

static void on_snapshot(void *arg, uint64_t peer, const Raftd__PeerFrame *f)
{
	struct tnode *n = arg;

	(void)peer, (void)f;
	n->snapshots++;
}

static void on_request(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
                       struct rd_transport_responder *r)
{
	struct tnode *n = arg;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__Pong pong = RAFTD__PONG__INIT;

	(void)peer;
	n->requests++;
	if (n->on_request != NULL) {
		n->on_request(n->on_request_arg, peer, req, r);
		return;
	}
	if (n->hold_requests && n->n_held < 16) {
		n->held[n->n_held++] = r;
		return;
	}
	if (req->body_case == RAFTD__PEER_REQUEST__BODY_PING) {
		pong.topology_version = req->ping->topology_version + 1;
		pong.sent_us = req->ping->sent_us;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_PONG;
		resp.pong = &pong;
	} else {
		resp.error = RAFTD__ERROR_CODE__INVALID;
	}
	rd_transport_respond(r, &resp);
}

static bool is_member(void *arg, uint64_t peer)
{
	struct tnode *n = arg;

	return n->members == 0 || (peer < 64 && (n->members >> peer) & 1);
}

void treply_count(void *arg, int err, const Raftd__PeerResponse *resp, const char *errmsg)
{
	struct tnode *n = arg;

	(void)resp;
	if (getenv("TDEBUG"))
		fprintf(stderr, "reply err=%d %s\n", err, errmsg ? errmsg : "");
	if (err == 0)
		n->replies++;
	else
		n->reply_errors++;
}

struct rd_transport_stats tstats_all(struct tenv *e, uint64_t at)
{
	struct rd_transport_stats st;

	rd_transport_stats(e->n[at].t, &st);
	return st;
}

static void on_peer(void *arg, uint64_t peer, bool up)
{
	struct tnode *n = arg;

	(void)peer;
	if (up)
		n->ups++;
	else
		n->downs++;
}

void tenv_certs(struct tenv *e, const char *args)
{
	char cmd[1024];
	const char *src = getenv("RD_SRC");

	snprintf(cmd, sizeof cmd, "%s/conf/raftd-certs %s", src ? src : ".", args);
	/* The first word after the command is the subcommand; DIR follows it. */
	{
		char sub[32], rest[512] = "";
		if (sscanf(args, "%31s %511[^\n]", sub, rest) >= 1)
			snprintf(cmd, sizeof cmd, "%s/conf/raftd-certs %s %s %s",
			         src ? src : ".", sub, e->dir, rest);
	}
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

void tenv_init(struct tenv *e, bool certs)
{
	memset(e, 0, sizeof *e);
	rd_log_set_level(getenv("RD_TEST_DEBUG") ? RD_LOG_DEBUG : RD_LOG_ERR);
	e->base = event_base_new();
	cr_assert_not_null(e->base);
	snprintf(e->dir, sizeof e->dir, "/tmp/rd-transport-XXXXXX");
	cr_assert_not_null(mkdtemp(e->dir));
	if (certs) {
		tenv_certs(e, "ca");
		for (int i = 1; i <= 3; i++) {
			char a[32];
			snprintf(a, sizeof a, "node %d", i);
			tenv_certs(e, a);
		}
	}
}

void tenv_fini(struct tenv *e)
{
	char cmd[512];

	for (int i = 0; i <= TN_MAX; i++)
		if (e->n[i].t)
			tnode_stop(e, (uint64_t)i);
	event_base_free(e->base);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", e->dir);
}

void tnode_config(struct tenv *e, uint64_t id, bool insecure,
                  struct rd_transport_config *cfg)
{
	rd_transport_config_init(cfg, NULL);
	cfg->node_id = id;
	cfg->tls_mode = insecure ? RD_TLS_INSECURE : RD_TLS_MUTUAL;
	snprintf(cfg->tls_ca, sizeof cfg->tls_ca, "%s/ca.pem", e->dir);
	snprintf(cfg->tls_cert, sizeof cfg->tls_cert, "%s/node%llu.pem", e->dir,
	         (unsigned long long)id);
	snprintf(cfg->tls_key, sizeof cfg->tls_key, "%s/node%llu.key", e->dir,
	         (unsigned long long)id);
	/* As a node keeps it in its data directory: the same across restarts. */
	snprintf(cfg->reset_secret_file, sizeof cfg->reset_secret_file,
	         "%s/reset-secret-%llu", e->dir, (unsigned long long)id);
	cfg->handshake_timeout_ms = 3000;
	cfg->backoff_min_ms = 20;
	cfg->backoff_max_ms = 300;
}

void tnode_start(struct tenv *e, uint64_t id, const struct rd_transport_config *cfg)
{
	tnode_start_on(e, id, cfg, e->base);
}

void tnode_start_on(struct tenv *e, uint64_t id, const struct rd_transport_config *cfg,
                    struct event_base *base)
{
	struct tnode *n = &e->n[id];
	struct rd_transport_callbacks cbs = {
	    .on_batch = on_batch,
	    .on_snapshot = on_snapshot,
	    .on_request = on_request,
	    .on_peer = on_peer,
	    .is_member = is_member,
	    .arg = n,
	};
	char msg[RD_ERRMSG_SIZE] = "";
	int rv;

	n->env = e;
	n->id = id;
	rv = rd_transport_new(&n->t, base, cfg, &cbs, msg);
	cr_assert_eq(rv, 0, "node %llu: %s", (unsigned long long)id, msg);
	rd_transport_local_addr(n->t, &n->addr, &n->addrlen);
}

void tnode_stop(struct tenv *e, uint64_t id)
{
	struct tnode *n = &e->n[id];

	for (unsigned i = 0; i < n->n_held; i++)
		rd_transport_responder_drop(n->held[i]);
	n->n_held = 0;
	rd_transport_free(n->t);
	n->t = NULL;
}

void tnode_add_peer(struct tenv *e, uint64_t at, uint64_t peer)
{
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(rd_transport_peer_add(e->n[at].t, peer,
	                                   (struct sockaddr *)&e->n[peer].addr,
	                                   e->n[peer].addrlen, msg),
	             0, "%s", msg);
}

void tenv_mesh(struct tenv *e)
{
	for (uint64_t a = 1; a <= TN_MAX; a++)
		for (uint64_t b = 1; b <= TN_MAX; b++)
			if (a != b && e->n[a].t && e->n[b].t)
				tnode_add_peer(e, a, b);
}

void tenv_start(struct tenv *e, bool tls, unsigned n)
{
	struct rd_transport_config cfg;

	for (uint64_t i = 1; i <= n; i++) {
		tnode_config(e, i, !tls, &cfg);
		tnode_start(e, i, &cfg);
	}
	tenv_mesh(e);
}

void tenv_up(struct tenv *e, bool tls, unsigned n)
{
	tenv_init(e, tls);
	tenv_start(e, tls, n);
}

static bool connected_1_2(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats(e, 1, 2).connected;
}

void tconnect_1_2(struct tenv *e)
{
	cr_assert_eq(tsend(e, 1, 2, 1, 1, 8), 0);
	cr_assert(trun(e, connected_1_2, NULL, 20000));
}

void tenv_other_ca(struct tenv *e, const char *sub, uint64_t id)
{
	const char *src = getenv("RD_SRC") ? getenv("RD_SRC") : ".";
	char cmd[2048];

	snprintf(cmd, sizeof cmd,
	         "%s/conf/raftd-certs ca %s/%s >/dev/null && "
	         "%s/conf/raftd-certs node %s/%s %llu >/dev/null",
	         src, e->dir, sub, src, e->dir, sub, (unsigned long long)id);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

void tcfg_cert(const struct tenv *e, struct rd_transport_config *cfg, const char *name)
{
	snprintf(cfg->tls_cert, sizeof cfg->tls_cert, "%s/%s.pem", e->dir, name);
	snprintf(cfg->tls_key, sizeof cfg->tls_key, "%s/%s.key", e->dir, name);
}

/* Pack `b` as a PeerFrame payload and queue it for `peer`. */
int tsend_batch(struct rd_transport *t, uint64_t peer, const Raftd__RaftBatch *b,
                char *msg)
{
	Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
	uint8_t *buf;
	size_t len;
	int rv;

	f.kind_case = RAFTD__PEER_FRAME__KIND_BATCH;
	f.batch = (Raftd__RaftBatch *)b;
	len = raftd__peer_frame__get_packed_size(&f);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return RD_ENOMEM;
	raftd__peer_frame__pack(&f, buf);
	rv = rd_transport_send_encoded(
	    t, peer, buf, len, b->n_messages + b->n_heartbeats + b->n_heartbeat_resps,
	    msg);
	free(buf);
	return rv;
}

int tsend(struct tenv *e, uint64_t from, uint64_t to, uint64_t first, unsigned n,
          size_t payload)
{
	Raftd__RaftBatch b = RAFTD__RAFT_BATCH__INIT;
	Raftd__RaftMessage *ms = calloc(n, sizeof *ms), **mp = calloc(n, sizeof *mp);
	Raftd__Entry ent = RAFTD__ENTRY__INIT, *ents[1] = {&ent};
	uint8_t *data = payload ? calloc(1, payload) : NULL;
	char msg[RD_ERRMSG_SIZE];
	int rv;

	ent.term = 1;
	ent.data.data = data;
	ent.data.len = payload;
	b.from = from;
	b.to = to;
	for (unsigned i = 0; i < n; i++) {
		raftd__raft_message__init(&ms[i]);
		ms[i].type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_APPEND;
		ms[i].group = i % 7;
		ms[i].from = from;
		ms[i].to = to;
		ms[i].term = 1;
		ms[i].index = first + i;
		if (payload) {
			ms[i].n_entries = 1;
			ms[i].entries = ents;
		}
		mp[i] = &ms[i];
	}
	b.n_messages = n;
	b.messages = mp;
	rv = tsend_batch(e->n[from].t, to, &b, msg);
	free(ms);
	free(mp);
	free(data);
	return rv;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
}

static uint64_t now_ms(void)
{
	return rd_clock_now_ms();
}

bool trun(struct tenv *e, bool (*pred)(struct tenv *, void *), void *arg, unsigned ms)
{
	struct event *tick = event_new(e->base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = {0, 5000};
	uint64_t end = now_ms() + ms;
	bool ok = false;

	event_add(tick, &tv);
	while (!(ok = pred ? pred(e, arg) : false) && now_ms() < end)
		event_base_loop(e->base, EVLOOP_ONCE);
	event_free(tick);
	return ok;
}

void trun_for(struct tenv *e, unsigned ms)
{
	trun(e, NULL, NULL, ms);
}

struct rd_transport_peer_stats tstats(struct tenv *e, uint64_t at, uint64_t peer)
{
	struct rd_transport_peer_stats st;

	memset(&st, 0, sizeof st);
	rd_transport_peer_stats(e->n[at].t, peer, &st);
	return st;
}

bool tgot(struct tenv *e, void *arg)
{
	const uint64_t *w = arg;
	return e->n[w[0]].msgs >= w[1];
}

bool tdowns(struct tenv *e, void *arg)
{
	const uint64_t *w = arg;
	return e->n[w[0]].downs >= w[1];
}

void tsnap_init(struct tsnap *s, uint32_t group, uint64_t from, uint64_t to,
                uint64_t index, uint64_t term)
{
	*s = (struct tsnap){.f = RAFTD__PEER_FRAME__INIT,
	                    .ch = RAFTD__SNAPSHOT_CHUNK__INIT,
	                    .meta = RAFTD__SNAPSHOT_META__INIT};
	s->meta.index = index;
	s->meta.term = term;
	s->ch.group = group;
	s->ch.from = from;
	s->ch.to = to;
	s->ch.meta = &s->meta;
	s->f.kind_case = RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK;
	s->f.snapshot_chunk = &s->ch;
}

bool tsnaps(struct tenv *e, void *arg)
{
	const uint64_t *w = arg;
	return e->n[w[0]].snapshots >= w[1];
}

void tping_init(struct tping *p)
{
	*p = (struct tping){.req = RAFTD__PEER_REQUEST__INIT, .ping = RAFTD__PING__INIT};
	p->req.body_case = RAFTD__PEER_REQUEST__BODY_PING;
	p->req.ping = &p->ping;
}
