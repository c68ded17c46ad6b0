/*
 * raftctl's pieces: daemon/raftctl.c holds the command table (name,
 * request builder, printer), argument parsing and the round trip over the
 * Unix socket; daemon/raftctl_print.c turns responses into the human and
 * --json output. JSON is written only through util/json.h.
 */
#ifndef RD_DAEMON_RAFTCTL_H
#define RD_DAEMON_RAFTCTL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "raftd.pb-c.h"

struct rd_backup_manifest;

#define RC_EXIT_FAILED      1
#define RC_EXIT_USAGE       2
#define RC_EXIT_UNREACHABLE 3
#define RC_EXIT_UNKNOWN     4 /* failed with outcome unknown (transport/wire.h) */
#define RC_EXIT_STREAM_END  5 /* tail / watch: the node ended the stream */

struct rc_opts {
	const char *socket;
	bool json;
	unsigned timeout_ms;
	uint64_t client_id; /* writes: the session (0: a random one per run) */
	uint64_t sequence;  /* writes: 1 unless --sequence */
};

/* One request being built: the envelope, storage for whichever operation
 * message it carries, and what the printer needs to know about it. */
struct rc_request {
	Raftd__ClientRequest req;
	union {
		Raftd__PutRequest put;
		Raftd__GetRequest get;
		Raftd__DeleteRequest del;
		Raftd__CasRequest cas;
		Raftd__ProposeRequest propose;
		Raftd__MetaPutRequest meta_put;
		Raftd__MetaGetRequest meta_get;
		Raftd__StatusRequest status;
		Raftd__GroupsRequest groups;
		Raftd__MembersRequest members;
		Raftd__MembersAddRequest members_add;
		Raftd__MembersRemoveRequest members_remove;
		Raftd__MembersPromoteRequest members_promote;
		Raftd__TransferLeaderRequest transfer;
		Raftd__ReadyRequest ready;
		Raftd__ShutdownRequest shutdown;
		Raftd__SendRequest send;
		Raftd__BackupRequest backup;
	} op;
	unsigned retry_ms;  /* > 0: keep trying to connect this long */
	const char *what;   /* get, meta get: "key" / "metadata key" */
	const char *key;    /* get, meta get: the key, for "not found" */
	bool prints_errors; /* the printer also handles error responses */
};

/* How a command's answer is printed (daemon/raftctl_print.c). */
enum rc_output {
	RC_OUT_INDEX,    /* a write: "OK group=G index=I" */
	RC_OUT_VALUE,    /* get / meta get: the value; a missing key fails */
	RC_OUT_OK,       /* no result: "OK" */
	RC_OUT_STATUS,   /* raftctl status: node, topology, loop figures */
	RC_OUT_GROUPS,   /* raftctl groups: one row per hosted group */
	RC_OUT_MEMBERS,  /* raftctl members: one row per member */
	RC_OUT_READY,    /* raftctl ready: "ready" / "not ready", any error */
	RC_OUT_ENVELOPE, /* raftctl send: the reply payload, or the error and
	                  * whether the envelope was delivered */
};

/* Print the answer `r` to request `rq` as `out` on stdout (one JSON
 * document when o->json) and return the exit code: 0, or RC_EXIT_FAILED
 * when the answer means the operation did not succeed (RC_OUT_VALUE: a
 * missing key in human output, with a line on stderr naming rq->what and
 * rq->key; RC_OUT_READY: any error but OK). `r` is borrowed for the call.
 * Called for answers whose error is OK, and for every answer when
 * rq->prints_errors. */
int rc_print(enum rc_output out, const struct rc_opts *o, const struct rc_request *rq,
             const Raftd__ClientResponse *r);

/* A response whose error is not OK: JSON on stdout with --json, and always
 * the error, message, whether the request was applied (rd_wire_outcome)
 * and hints on stderr. Returns RC_EXIT_FAILED when the request was not
 * applied, RC_EXIT_UNKNOWN when its outcome is unknown. */
int rc_print_failed(const struct rc_opts *o, const Raftd__ClientResponse *r);

/* raftctl tail / watch (daemon/raftctl_stream.c): send `sub` on the
 * connected socket `fd` (closed on return), print entries until a signal,
 * the end of the stream or `count` entries (0: no limit). Returns the exit
 * code. */
int rc_stream(const struct rc_opts *o, int fd, Raftd__SubscribeRequest *sub,
              uint64_t count);

/* raftctl handle [--vshard V ...] -- CMD ARGS... (daemon/raftctl_handle.c):
 * serve envelopes until the node closes the connection; returns the exit
 * code. */
int rc_handle(const struct rc_opts *o, int argc, char **argv);

/* Connect to o->socket: a descriptor, or -1 with errno set. */
int rc_dial(const char *path);

/* "no raftd at ...": the message for a daemon that cannot be reached;
 * returns RC_EXIT_UNREACHABLE. */
int rc_unreachable(const char *path, const char *what);

/* "raftctl: COMMAND: <fmt, ap>AFTER" and a newline on stderr (no
 * "COMMAND: " when `command` is NULL). */
void rc_vcomplain(const char *command, const char *after, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* raftctl backup save FILE / backup inspect FILE (daemon/raftctl_backup.c):
 * the whole command, given the arguments after its name; returns the exit
 * code. */
int rc_backup_save(const struct rc_opts *o, int argc, char **argv);
int rc_backup_inspect(const struct rc_opts *o, int argc, char **argv);

/* 0 when a command got `want` arguments, else a usage message naming
 * `cmd` on stderr and RC_EXIT_USAGE. */
int rc_need(int argc, int want, const char *cmd);

/* Their output (raftctl_print.c): a completed save, and a verified file's
 * manifest. */
void rc_print_backup_saved(const struct rc_opts *o, const char *file, uint32_t groups,
                           uint64_t bytes, double seconds);
void rc_print_manifest(const struct rc_opts *o, const char *file, uint64_t size,
                       const struct rd_backup_manifest *m);

#endif
