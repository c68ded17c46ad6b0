/*
 * raftctl backup save FILE / backup inspect FILE.
 *
 * save: one BackupRequest, then BackupPart responses until the one marked
 * last (proto/raftd.proto); their bytes go, in order, to a temporary file
 * next to FILE (FILE.tmp-PID), which is fsynced, renamed to FILE, and the
 * directory fsynced. An error response, a lost connection or a signal
 * removes the temporary file, so a failed save never leaves a file that
 * looks complete (and an existing FILE is only ever replaced whole).
 * Progress (groups, bytes, rate) goes to stderr when it is a terminal.
 *
 * inspect: reads the file once, verifying every checksum
 * (storage/backup.h), and prints the manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raftctl.h"
#include "raftd.pb-c.h"
#include "storage/backup.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/frame.h"

/* A response frame holds one record of the file and its envelope. */
#define MAX_PART (RD_BACKUP_REC_MAX + 4096)

static char tmp_path[4096];

static void on_signal(int sig)
{
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int fsync_dir_of(const char *file)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", file);
	int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rv = fsync(fd);
	close(fd);
	return rv;
}

static int failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failed(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc_vcomplain("backup", " (no file written)", fmt, ap);
	va_end(ap);
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	tmp_path[0] = '\0';
	return RC_EXIT_FAILED;
}

static void progress(const Raftd__BackupPart *p, uint64_t t0_ms, bool final)
{
	double s = (double)(rd_clock_now_ms() - t0_ms) / 1000.0;
	double mb = (double)p->bytes_done / 1e6;
	fprintf(stderr, "\rbackup: %u/%u groups, %.1f MB, %.1f MB/s%s", p->groups_done,
	        p->groups_total, mb, s > 0 ? mb / s : 0.0, final ? "\n" : "   ");
}

/* Receive the stream into fd; 0 once the last part is written. */
static int receive(const struct rc_opts *o, int sock, int fd, uint32_t *groups,
                   uint64_t *bytes)
{
	bool tty = !o->json && isatty(2);
	uint64_t t0 = rd_clock_now_ms(), shown = 0;

	for (;;) {
		uint8_t *in;
		size_t inlen;
		int rv = rd_frame_read_fd(sock, MAX_PART, &in, &inlen);
		if (rv != 0) {
			if (tty)
				fprintf(stderr, "\n");
			return failed("the connection to raftd ended before the backup "
			              "was complete: %s",
			              rv == RD_ECLOSED ? "closed" : rd_strerror(rv));
		}
		Raftd__ClientResponse *r =
		    raftd__client_response__unpack(NULL, inlen, in);
		free(in);
		if (r == NULL)
			return failed("a reply could not be decoded");
		if (r->error != RAFTD__ERROR_CODE__OK ||
		    r->result_case != RAFTD__CLIENT_RESPONSE__RESULT_BACKUP_PART) {
			if (tty)
				fprintf(stderr, "\n");
			if (tmp_path[0] != '\0')
				unlink(tmp_path);
			tmp_path[0] = '\0';
			rv = rc_print_failed(o, r);
			raftd__client_response__free_unpacked(r, NULL);
			return rv;
		}
		const Raftd__BackupPart *p = r->backup_part;
		if (rd_frame_write_all(fd, p->data.data, p->data.len) != 0) {
			raftd__client_response__free_unpacked(r, NULL);
			return failed("write %s: %s", tmp_path, strerror(errno));
		}
		bool last = p->last;
		if (tty && (last || rd_clock_now_ms() - shown >= 200)) {
			progress(p, t0, last);
			shown = rd_clock_now_ms();
		}
		*groups = p->groups_total;
		*bytes = p->bytes_done;
		raftd__client_response__free_unpacked(r, NULL);
		if (last)
			return 0;
	}
}

int rc_backup_save(const struct rc_opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__BackupRequest b = RAFTD__BACKUP_REQUEST__INIT;
	uint64_t t0 = rd_clock_now_ms(), bytes = 0;
	uint32_t groups = 0;
	uint8_t *buf;
	size_t len;
	int sock, fd, rv;
	const char *file;

	if (rc_need(argc, 1, "backup save"))
		return RC_EXIT_USAGE;
	file = argv[0];

	sock = rc_dial(o->socket);
	if (sock < 0)
		return rc_unreachable(o->socket, strerror(errno));
	snprintf(tmp_path, sizeof tmp_path, "%s.tmp-%d", file, (int)getpid());
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		tmp_path[0] = '\0';
		close(sock);
		return failed("cannot create %s: %s", file, strerror(e));
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);

	req.request_id = 1;
	req.deadline_ms = o->timeout_ms;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_BACKUP;
	req.backup = &b;
	len = raftd__client_request__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		rv = failed("out of memory");
		goto out;
	}
	raftd__client_request__pack(&req, buf);
	rv = rd_frame_write_fd(sock, buf, len);
	free(buf);
	if (rv != 0) {
		rv = failed("sending the request to %s: %s", o->socket, strerror(errno));
		goto out;
	}
	rv = receive(o, sock, fd, &groups, &bytes);
	if (rv != 0)
		goto out;
	/* Durable before it gets its name: a crash leaves either no FILE or
	 * the whole of it. */
	if (fsync(fd) != 0) {
		rv = failed("fsync %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	if (rename(tmp_path, file) != 0) {
		rv = failed("rename to %s: %s", file, strerror(errno));
		goto out;
	}
	tmp_path[0] = '\0';
	if (fsync_dir_of(file) != 0) {
		rv = failed("fsync the directory of %s: %s", file, strerror(errno));
		goto out;
	}
	rc_print_backup_saved(o, file, groups, bytes,
	                      (double)(rd_clock_now_ms() - t0) / 1000.0);
out:
	close(fd);
	close(sock);
	return rv;
}

int rc_backup_inspect(const struct rc_opts *o, int argc, char **argv)
{
	struct rd_backup_manifest m;
	char msg[RD_ERRMSG_SIZE];
	struct stat st;
	const char *file;

	if (rc_need(argc, 1, "backup inspect"))
		return RC_EXIT_USAGE;
	file = argv[0];

	if (rd_backup_read(file, NULL, NULL, &m, msg) != 0) {
		fprintf(stderr, "raftctl: backup %s: %s\n", file, msg);
		return RC_EXIT_FAILED;
	}
	if (stat(file, &st) != 0)
		st.st_size = 0;
	rc_print_manifest(o, file, (uint64_t)st.st_size, &m);
	rd_backup_manifest_free(&m);
	return 0;
}
