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

/* X(name, description) */
#define RD_ERR_MAP(X)                                                                    \
	X(EAGAIN, "resource temporarily unavailable, try again")                         \
	X(ENOMEM, "out of memory")                                                       \
	X(EINVAL, "invalid argument")                                                    \
	X(ECONFIG, "invalid configuration")                                              \
	X(EIO, "input/output error")                                                     \
	X(ECORRUPT, "corrupt data")                                                      \
	X(ENOTFOUND, "not found")                                                        \
	X(EEXIST, "already exists")                                                      \
	X(ENOTLEADER, "not the leader")                                                  \
	X(ENOLEADER, "no leader known")                                                  \
	X(ENOTREADY, "node not ready")                                                   \
	X(ETIMEDOUT, "timed out")                                                        \
	X(ECASFAILED, "compare-and-set failed")                                          \
	X(EBUSY, "busy: another operation is in progress")                               \
	X(ECOMPACTED, "entry compacted away")                                            \
	X(EUNAVAILABLE, "entry not available yet")                                       \
	X(EPROTO, "protocol error")                                                      \
	X(ETOOBIG, "message too large")                                                  \
	X(ECLOSED, "connection closed")                                                  \
	X(ETLS, "TLS failure")                                                           \
	X(EMISMATCH, "identity mismatch")                                                \
	X(ESHUTDOWN, "shutting down")                                                    \
	X(EOLDSEQ, "sequence older than the client's last applied one: not applied")

enum rd_err {
	RD_OK = 0,
#define RD__ERR_ENUM(name, desc) RD_##name,
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
