/*
 * raftctl tail / raftctl watch: one subscription (proto/raftd.proto,
 * "Commit streams") printed as it arrives, one line per entry or event.
 *
 * The client grants credit as it prints (RC_STREAM_CREDIT at first, then
 * what it consumed each time half of it is used), so the node never sends
 * more than it can print. SIGINT or SIGTERM end it cleanly (exit 0); the
 * node ending the stream because it shuts down, or closing the connection,
 * is exit code 5 (RC_EXIT_STREAM_END); any other end (COMPACTED, CUT_OFF,
 * NOT_FOUND, ...) is 1 with the reason on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/client.h"
#include "raftctl.h"
#include "util/frame.h"
#include "util/json.h"

#define RC_STREAM_CREDIT 1024u
#define MAX_FRAME        (64u << 20)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void print_bytes(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			fputc(p[i], f);
		else
			fprintf(f, "\\x%02x", p[i]);
	}
}

static const char *kind_name(Raftd__EntryKind k)
{
	return k == RAFTD__ENTRY_KIND__KIND_RAW  ? "raw"
	       : k == RAFTD__ENTRY_KIND__KIND_KV ? "kv"
	                                         : "meta";
}

static const char *op_name(Raftd__KvOp op)
{
	return op == RAFTD__KV_OP__KV_DELETE ? "delete"
	       : op == RAFTD__KV_OP__KV_CAS  ? "cas"
	                                     : "put";
}

static void print_json(const Raftd__StreamEntry *e, bool watch)
{
	struct rd_json j;

	rd_json_init(&j);
	rd_json_obj_begin(&j);
	rd_json_key(&j, "group");
	rd_json_u64(&j, e->group);
	rd_json_key(&j, "index");
	rd_json_u64(&j, e->index);
	if (!watch) {
		rd_json_key(&j, "term");
		rd_json_u64(&j, e->term);
		rd_json_key(&j, "kind");
		rd_json_str(&j, kind_name(e->kind));
	}
	if (e->kv != NULL) {
		rd_json_key(&j, "op");
		rd_json_str(&j, op_name(e->kv->op));
		rd_json_key(&j, "key");
		rd_json_bytes(&j, e->kv->key.data, e->kv->key.len);
		if (e->kv->op != RAFTD__KV_OP__KV_DELETE) {
			rd_json_key(&j, "value");
			rd_json_bytes(&j, e->kv->value.data, e->kv->value.len);
		}
		rd_json_key(&j, "applied");
		rd_json_bool(&j, e->kv->applied);
	} else {
		rd_json_key(&j, "payload");
		rd_json_bytes(&j, e->payload.data, e->payload.len);
	}
	rd_json_obj_end(&j);
	printf("%s\n", j.buf != NULL ? j.buf : "{}");
	rd_json_free(&j);
}

static void print_entry(const struct rc_opts *o, const Raftd__StreamEntry *e, bool watch)
{
	if (o->json) {
		print_json(e, watch);
	} else if (watch && e->kv != NULL) {
		printf("%s ", op_name(e->kv->op));
		print_bytes(stdout, e->kv->key.data, e->kv->key.len);
		if (e->kv->op != RAFTD__KV_OP__KV_DELETE) {
			putchar(' ');
			print_bytes(stdout, e->kv->value.data, e->kv->value.len);
		}
		printf(" group=%" PRIu64 " index=%" PRIu64 "\n", e->group, e->index);
	} else {
		printf("group=%" PRIu64 " index=%" PRIu64 " term=%" PRIu64 " %s ",
		       e->group, e->index, e->term, kind_name(e->kind));
		if (e->kv != NULL) {
			printf("%s ", op_name(e->kv->op));
			print_bytes(stdout, e->kv->key.data, e->kv->key.len);
			if (e->kv->op != RAFTD__KV_OP__KV_DELETE) {
				putchar('=');
				print_bytes(stdout, e->kv->value.data, e->kv->value.len);
			}
			if (!e->kv->applied)
				printf(" (not applied)");
		} else {
			print_bytes(stdout, e->payload.data, e->payload.len);
		}
		putchar('\n');
	}
	fflush(stdout);
}

/* Read one frame, waking up for signals. 0, 1 on a signal, -1 closed. */
static int read_frame(int fd, uint8_t **in, size_t *inlen)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (!stop_requested) {
		int r = poll(&p, 1, 200);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return rd_frame_read_fd(fd, MAX_FRAME, in, inlen) == 0 ? 0 : -1;
	}
	return 1;
}

static int ended(const struct rc_opts *o, const Raftd__ClientResponse *r)
{
	if (r->error == RAFTD__ERROR_CODE__SHUTTING_DOWN) {
		fprintf(stderr, "raftctl: stream ended by the server: %s\n",
		        r->error_message);
		return RC_EXIT_STREAM_END;
	}
	if (r->error == RAFTD__ERROR_CODE__COMPACTED && r->stream_end != NULL)
		fprintf(stderr,
		        "raftctl: group %" PRIu64 ": oldest index still held is %" PRIu64
		        " (resume with --from %" PRIu64 ")\n",
		        r->stream_end->group, r->stream_end->oldest_index,
		        r->stream_end->oldest_index);
	return rc_print_failed(o, r);
}

int rc_stream(const struct rc_opts *o, int fd, Raftd__SubscribeRequest *sub,
              uint64_t count)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t seen = 0, used = 0;
	int rv = RC_EXIT_STREAM_END;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sub->credit = RC_STREAM_CREDIT;
	req.request_id = 1;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_SUBSCRIBE;
	req.subscribe = sub;
	if (rd_ctl_send_request(fd, &req) != 0) {
		fprintf(stderr, "raftctl: the subscription could not be sent: %s\n",
		        strerror(errno));
		return RC_EXIT_UNREACHABLE;
	}
	for (;;) {
		uint8_t *in;
		size_t inlen;
		int r = read_frame(fd, &in, &inlen);

		if (r == 1) {
			rv = 0; /* SIGINT / SIGTERM */
			break;
		}
		if (r < 0) {
			fprintf(stderr, "raftctl: stream ended by the server: connection "
			                "closed\n");
			break;
		}
		Raftd__ClientResponse *resp =
		    raftd__client_response__unpack(NULL, inlen, in);
		free(in);
		if (resp == NULL) {
			fprintf(stderr, "raftctl: a stream frame could not be decoded\n");
			rv = RC_EXIT_FAILED;
			break;
		}
		if (resp->error != RAFTD__ERROR_CODE__OK || resp->entry == NULL) {
			rv = resp->error == RAFTD__ERROR_CODE__OK ? RC_EXIT_STREAM_END
			                                          : ended(o, resp);
			raftd__client_response__free_unpacked(resp, NULL);
			break;
		}
		print_entry(o, resp->entry, sub->watch);
		raftd__client_response__free_unpacked(resp, NULL);
		if (count != 0 && ++seen >= count) {
			rv = 0;
			break;
		}
		if (++used >= RC_STREAM_CREDIT / 2) {
			int sent = rd_ctl_send_credit(fd, 2, 1, (uint32_t)used);
			used = 0;
			if (sent != 0)
				break;
		}
	}
	close(fd);
	return rv;
}
