"""How the suite classes each answer: the one table of outcome classes.

  ok       the operation took effect (a read: it observed the value given)
  fail     definitely not applied: the node refused it before proposing, or
           the state machine applied it as a no-op (CAS_FAILED, which also
           reports the value it saw)
  unknown  it may have taken effect, or may still: the checker lets it
           take effect at any point after its invocation, or never

proto/raftd.proto does not yet say which error codes mean "not applied";
until it does, only the codes below that cannot follow a proposal are
definite, and everything else (including a code this table does not know,
a dropped connection and a client-side timeout) is unknown. NOT_LEADER
and NO_LEADER are unknown on purpose: a node that forwarded a write may
answer them after the write was proposed, or even committed.
"""

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"

# Answers that mean "not applied".
DEFINITE = frozenset({
    "NOT_READY",   # refused before routing: the node has not caught up
    "INVALID",     # malformed request, never proposed
    "CAS_FAILED",  # applied, changed nothing; carries the current value
    "NOT_FOUND",   # no such key/group
    "TOO_LARGE",   # over a size limit, never proposed
    "NOT_SENT",    # (client side) the request never reached the node
})

# Answers that leave the outcome open, listed for the reader; anything not
# in DEFINITE (and not OK) is treated the same way.
UNKNOWN_CODES = frozenset({
    "NOT_LEADER", "NO_LEADER", "TIMEOUT", "INTERNAL", "UNAVAILABLE",
    "SHUTTING_DOWN", "BUSY",
    "DISCONNECTED",    # the socket closed or failed before an answer
    "CLIENT_TIMEOUT",  # no answer within the client's own deadline
})


def classify(error):
    """The outcome class of an answer's error name."""
    if error == "OK":
        return OK
    if error in DEFINITE:
        return FAIL
    return UNKNOWN
