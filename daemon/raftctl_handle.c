/*
 * raftctl handle [--vshard V ...] -- CMD ARGS...: serve envelopes
 * (proto/raftd.proto, "Envelopes") by running CMD once per delivery.
 *
 * The connection registers as a handler, then reads deliveries one at a
 * time. For each, CMD runs with the payload on its stdin and RAFTD_VSHARD,
 * RAFTD_SOURCE_NODE (and RAFTD_DELIVERY_ID) in its environment; exit status
 * 0 makes its stdout the reply, anything else an application error carrying
 * its stderr (or the exit status). A CMD still running at the delivery's
 * deadline is killed and nothing is answered (the node answers the sender
 * TIMEOUT by itself). Several `raftctl
 * handle` processes on one node share the deliveries.
 *
 * Exit: 3 when the node cannot be reached or closes the connection, 1 when
 * it refuses the registration, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/client.h"
#include "raftctl.h"
#include "raftd.pb-c.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/frame.h"

#define MAX_FRAME  (64u << 20)
#define MAX_OUTPUT (1000u * 1024) /* the node's envelope payload cap at most */
#define MAX_ERRTXT 4096

struct buf {
	uint8_t *p;
	size_t len, cap;
	bool over;
};

static void buf_add(struct buf *b, const uint8_t *d, size_t n, size_t limit)
{
	if (b->len + n > limit) {
		b->over = true;
		n = limit - b->len;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (p == NULL) {
			b->over = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* Run argv with `d`'s payload on stdin; fill *out (stdout) and *err
 * (stderr); return the exit status, or -1 with *why set. */
static int run_cmd(char **argv, const Raftd__Delivery *d, struct buf *out,
                   struct buf *err, const char **why)
{
	int in_p[2], out_p[2], err_p[2], status;
	uint64_t until = rd_clock_now_ms() + (d->deadline_ms ? d->deadline_ms : 1);
	size_t written = 0;
	bool timed_out = false;
	pid_t pid;

	if (pipe2(in_p, O_CLOEXEC) != 0)
		goto err_pipe;
	if (pipe2(out_p, O_CLOEXEC) != 0)
		goto err_after_in;
	if (pipe2(err_p, O_CLOEXEC) != 0)
		goto err_after_out;
	pid = fork();
	if (pid < 0) {
		close(err_p[0]), close(err_p[1]);
		goto err_after_out;
	}
	if (pid == 0) {
		char v[16], s[24], id[24];
		snprintf(v, sizeof v, "%" PRIu32, d->vshard);
		snprintf(s, sizeof s, "%" PRIu64, d->source_node);
		snprintf(id, sizeof id, "%" PRIu64, d->delivery_id);
		setenv("RAFTD_VSHARD", v, 1);
		setenv("RAFTD_SOURCE_NODE", s, 1);
		setenv("RAFTD_DELIVERY_ID", id, 1);
		dup2(in_p[0], 0);
		dup2(out_p[1], 1);
		dup2(err_p[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in_p[0]), close(out_p[1]), close(err_p[1]);
	struct pollfd pf[3] = {{.fd = in_p[1], .events = POLLOUT},
	                       {.fd = out_p[0], .events = POLLIN},
	                       {.fd = err_p[0], .events = POLLIN}};
	if (d->payload.len == 0) {
		close(in_p[1]);
		pf[0].fd = -1;
	}
	while (pf[1].fd >= 0 || pf[2].fd >= 0) {
		uint64_t now = rd_clock_now_ms();
		uint8_t chunk[16384];

		if (now >= until) {
			timed_out = true;
			break;
		}
		if (poll(pf, 3, (int)(until - now)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].fd >= 0 && (pf[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(pf[0].fd, d->payload.data + written,
			                  d->payload.len - written);
			if (n > 0)
				written += (size_t)n;
			if (n < 0 || written == d->payload.len) {
				close(pf[0].fd);
				pf[0].fd = -1;
			}
		}
		for (int i = 1; i < 3; i++) {
			if (pf[i].fd < 0 ||
			    !(pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
			if (n > 0) {
				buf_add(i == 1 ? out : err, chunk, (size_t)n,
				        i == 1 ? MAX_OUTPUT : MAX_ERRTXT);
			} else if (n == 0 || errno != EINTR) {
				close(pf[i].fd);
				pf[i].fd = -1;
			}
		}
	}
	for (int i = 0; i < 3; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		*why = NULL; /* the node answers the sender TIMEOUT by itself */
		return -1;
	}
	return status;

err_after_out:
	close(out_p[0]), close(out_p[1]);
err_after_in:
	close(in_p[0]), close(in_p[1]);
err_pipe:
	*why = "cannot start the command (pipe or fork failed)";
	return -1;
}

/* Serve one delivery and send its reply. */
static int serve(int fd, char **argv, const Raftd__Delivery *d)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__DeliveryReply dr = RAFTD__DELIVERY_REPLY__INIT;
	struct buf out = {0}, err = {0};
	const char *why = NULL;
	char text[MAX_ERRTXT + 64];
	int status = run_cmd(argv, d, &out, &err, &why), rv;

	if (status < 0 && why == NULL) {
		fprintf(stderr,
		        "raftctl: delivery %" PRIu64 " not answered before its "
		        "deadline: command killed\n",
		        d->delivery_id);
		return 0;
	}
	dr.delivery_id = d->delivery_id;
	dr.error = (char *)"";
	if (status < 0) {
		dr.error = (char *)why;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		size_t n = err.len;
		while (n > 0 && (err.p[n - 1] == '\n' || err.p[n - 1] == '\r'))
			n--;
		if (n > 0)
			snprintf(text, sizeof text, "%.*s", (int)n, (const char *)err.p);
		else if (WIFEXITED(status))
			snprintf(text, sizeof text, "exit status %d",
			         WEXITSTATUS(status));
		else
			snprintf(text, sizeof text, "killed by signal %d",
			         WTERMSIG(status));
		dr.error = text;
	} else if (out.over) {
		dr.error = (char *)"the command's output is over the payload limit";
	} else {
		dr.payload.data = out.p;
		dr.payload.len = out.len;
	}
	req.request_id = d->delivery_id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_DELIVERY_REPLY;
	req.delivery_reply = &dr;
	rv = rd_ctl_send_request(fd, &req);
	free(out.p);
	free(err.p);
	return rv;
}

int rc_handle(const struct rc_opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__HandleRequest hr = RAFTD__HANDLE_REQUEST__INIT;
	uint32_t vshards[1024];
	int i = 0, fd;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *end;
		unsigned long v;

		if (strcmp(argv[i], "--vshard") != 0 || i + 1 >= argc)
			break;
		errno = 0;
		v = strtoul(argv[++i], &end, 10);
		if (errno != 0 || *end != '\0' || argv[i][0] == '\0' || v >= 1024) {
			fprintf(stderr, "raftctl: --vshard takes a number in 0..1023\n");
			return RC_EXIT_USAGE;
		}
		if (hr.n_vshards < 1024)
			vshards[hr.n_vshards++] = (uint32_t)v;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc) {
		fprintf(stderr, "raftctl: handle needs a command: raftctl handle "
		                "[--vshard V ...] -- CMD ARGS...\n");
		return RC_EXIT_USAGE;
	}
	hr.vshards = vshards;
	signal(SIGPIPE, SIG_IGN);
	if ((fd = rc_dial(o->socket)) < 0) {
		fprintf(stderr, "raftctl: no raftd at %s (%s): is it running?\n",
		        o->socket, strerror(errno));
		return RC_EXIT_UNREACHABLE;
	}
	req.request_id = 1;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_HANDLE;
	req.handle = &hr;
	if (rd_ctl_send_request(fd, &req) != 0) {
		fprintf(stderr, "raftctl: cannot write to %s\n", o->socket);
		close(fd);
		return RC_EXIT_UNREACHABLE;
	}
	for (bool registered = false;;) {
		Raftd__ClientResponse *r;
		uint8_t *in;
		size_t len;
		int rv = rd_frame_read_fd(fd, MAX_FRAME, &in, &len);

		if (rv != 0) {
			fprintf(stderr, "raftctl: %s closed the handler connection\n",
			        o->socket);
			close(fd);
			return RC_EXIT_UNREACHABLE;
		}
		r = raftd__client_response__unpack(NULL, len, in);
		free(in);
		if (r == NULL)
			continue;
		if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_DELIVERY) {
			rv = serve(fd, argv + i, r->delivery);
		} else if (!registered && r->error == RAFTD__ERROR_CODE__OK) {
			registered = true;
			fprintf(stderr, "raftctl: handling envelopes for %s\n",
			        hr.n_vshards ? "the listed vShards" : "every vShard");
		} else if (r->error != RAFTD__ERROR_CODE__OK) {
			rv = rc_print_failed(o, r);
			raftd__client_response__free_unpacked(r, NULL);
			close(fd);
			return rv;
		}
		raftd__client_response__free_unpacked(r, NULL);
		if (rv != 0) {
			fprintf(stderr, "raftctl: cannot write to %s\n", o->socket);
			close(fd);
			return RC_EXIT_UNREACHABLE;
		}
	}
}
