/*
 * One error table for raftd. Every fallible function returns 0 or one of the
 * RD_E* codes below; a caller-supplied message buffer (RD_ERRMSG_SIZE bytes)
 * carries the context ("group 3 index 17: term mismatch") upward. Library
 * errors (RocksDB errptr strings, negative ngtcp2 codes, wolfSSL results,
 * errno) are translated into these codes where they are called and never
 * escape that boundary.
 *
 * RD_EAGAIN is "try again later" (a would-block, a full window), not a failure.
 */
#ifndef RD_UTIL_ERR_H
#define RD_UTIL_ERR_H

#include <stddef.h>

#define RD_ERRMSG_SIZE 256

/* X(name, wire code, description). The wire code is the ErrorCode of
 * proto/raftd.proto (without its RAFTD__ERROR_CODE__ prefix) that a client
 * or peer sees for the error: rd_err_to_wire (transport/wire.h) is the one
 * place that turns an RD_E* code into it. */
#define RD_ERR_MAP(X)                                                                    \
	X(EAGAIN, UNAVAILABLE, "resource temporarily unavailable, try again")            \
	X(ENOMEM, INTERNAL, "out of memory")                                             \
	X(EINVAL, INVALID, "invalid argument")                                           \
	X(ECONFIG, INVALID, "invalid configuration")                                     \
	X(EIO, INTERNAL, "input/output error")                                           \
	X(ECORRUPT, INTERNAL, "corrupt data")                                            \
	X(ENOTFOUND, NOT_FOUND, "not found")                                             \
	X(EEXIST, INVALID, "already exists")                                             \
	X(ENOTLEADER, NOT_LEADER, "not the leader")                                      \
	X(ENOLEADER, NO_LEADER, "no leader known")                                       \
	X(ENOTREADY, NOT_READY, "node not ready")                                        \
	X(ETIMEDOUT, TIMEOUT, "timed out")                                               \
	X(ECASFAILED, CAS_FAILED, "compare-and-set failed")                              \
	X(EBUSY, BUSY, "busy: another operation is in progress")                         \
	X(ECOMPACTED, COMPACTED, "entry compacted away")                                 \
	X(EUNAVAILABLE, UNAVAILABLE, "entry not available yet")                          \
	X(EPROTO, INVALID, "protocol error")                                             \
	X(ETOOBIG, TOO_LARGE, "message too large")                                       \
	X(ECLOSED, UNAVAILABLE, "connection closed")                                     \
	X(ETLS, UNAVAILABLE, "TLS failure")                                              \
	X(EMISMATCH, INVALID, "identity mismatch")                                       \
	X(ESHUTDOWN, SHUTTING_DOWN, "shutting down")                                     \
	X(EOLDSEQ, SEQUENCE_TOO_OLD,                                                     \
	  "sequence older than the client's last applied one: not applied")              \
	X(ECUTOFF, CUT_OFF, "subscriber cut off: it stopped reading")

enum rd_err {
	RD_OK = 0,
#define RD__ERR_ENUM(name, wire, desc) RD_##name,
	RD_ERR_MAP(RD__ERR_ENUM)
#undef RD__ERR_ENUM
	    RD_ERR_COUNT
};

/* The constant description of `code`; "unknown error" for codes outside the
 * table. Never NULL. */
const char *rd_strerror(int code);

/* The symbolic name of `code` ("ECORRUPT"); "EUNKNOWN" outside the table. */
const char *rd_errname(int code);

/* Format a message into `msg` (RD_ERRMSG_SIZE bytes, may be NULL) and return
 * `code`, so that callers can write `return rd_errorf(msg, RD_EIO, ...)`. */
int rd_errorf(char *msg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend context to the message already in `msg` ("open /x: " + old). */
void rd_errprefix(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
