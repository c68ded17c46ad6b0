/*
 * raftctl's pieces: daemon/raftctl.c holds the command table (name,
 * request builder, printer), argument parsing and the round trip over the
 * Unix socket; daemon/raftctl_print.c turns responses into the human and
 * --json output. JSON is written only through util/json.h.
 */
#ifndef RD_DAEMON_RAFTCTL_H
#define RD_DAEMON_RAFTCTL_H

#include <stdbool.h>

#include "raftd.pb-c.h"

#define RC_EXIT_FAILED      1
#define RC_EXIT_USAGE       2
#define RC_EXIT_UNREACHABLE 3

struct rc_opts {
	const char *socket;
	bool json;
	unsigned timeout_ms;
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
		Raftd__TransferLeaderRequest transfer;
		Raftd__ReadyRequest ready;
		Raftd__ShutdownRequest shutdown;
	} op;
	unsigned retry_ms;  /* > 0: keep trying to connect this long */
	const char *what;   /* get, meta get: "key" / "metadata key" */
	const char *key;    /* get, meta get: the key, for "not found" */
	bool prints_errors; /* the printer also handles error responses */
};

/* A printer: writes the response `r` to `rq` on stdout (JSON when o->json)
 * and returns the exit code (0, or RC_EXIT_FAILED when the answer means the
 * operation did not succeed). `r` is borrowed for the call. Printers are
 * called for responses with error OK, unless rq->prints_errors. */
typedef int (*rc_print_fn)(const struct rc_opts *o, const struct rc_request *rq,
                           const Raftd__ClientResponse *r);

/* Write index and group of a write ("OK group=G index=I"). */
int rc_print_index(const struct rc_opts *o, const struct rc_request *rq,
                   const Raftd__ClientResponse *r);
/* Write a value read by get / meta get; a missing key is RC_EXIT_FAILED in
 * human output (with a line on stderr naming rq->what and rq->key) and
 * {"found":false,"value":null} with --json. */
int rc_print_value(const struct rc_opts *o, const struct rc_request *rq,
                   const Raftd__ClientResponse *r);
/* "OK" for an operation with no result. */
int rc_print_ok(const struct rc_opts *o, const struct rc_request *rq,
                const Raftd__ClientResponse *r);
/* `raftctl status`: node, readiness, topology and loop figures. */
int rc_print_status(const struct rc_opts *o, const struct rc_request *rq,
                    const Raftd__ClientResponse *r);
/* `raftctl groups`: one row per hosted group. */
int rc_print_groups(const struct rc_opts *o, const struct rc_request *rq,
                    const Raftd__ClientResponse *r);
/* `raftctl members`: one row per cluster member. */
int rc_print_members(const struct rc_opts *o, const struct rc_request *rq,
                     const Raftd__ClientResponse *r);
/* `raftctl ready`: "ready" / "not ready" for any response (needs
 * rq->prints_errors); RC_EXIT_FAILED unless the error is OK. */
int rc_print_ready(const struct rc_opts *o, const struct rc_request *rq,
                   const Raftd__ClientResponse *r);
/* A response whose error is not OK: JSON on stdout with --json, and always
 * the error, message and hints on stderr. Returns RC_EXIT_FAILED. */
int rc_print_failed(const struct rc_opts *o, const Raftd__ClientResponse *r);

#endif
