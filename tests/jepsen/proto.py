"""The client side of raftd's local socket protocol (proto/raftd.proto).

Each frame is a 4-byte big-endian length and one protobuf message:
ClientRequest from client to node, ClientResponse back. Only the messages
the suite sends or reads are encoded here, by hand (the suite uses Debian's
python3 without a protobuf package); test_codec.py checks this codec
against the generated protobuf-c code (tests/jepsen/codec.c).
"""

import struct

# ErrorCode (proto/raftd.proto), by number.
ERROR_NAMES = {
    0: "OK", 1: "NOT_READY", 2: "NOT_LEADER", 3: "NO_LEADER", 4: "TIMEOUT",
    5: "CAS_FAILED", 6: "INVALID", 7: "NOT_FOUND", 8: "INTERNAL",
    9: "UNAVAILABLE", 10: "TOO_LARGE", 11: "SHUTTING_DOWN", 12: "BUSY",
}

# ClientRequest.op field numbers.
OP_PUT, OP_GET, OP_DELETE, OP_CAS = 10, 11, 12, 13
OP_STATUS, OP_GROUPS, OP_READY = 17, 18, 23

ROLE_NAMES = {0: "follower", 1: "pre-candidate", 2: "candidate",
              3: "leader", 4: "learner"}


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_varint(num, v):
    return _varint(num << 3) + _varint(v) if v else b""


def _field_bytes(num, b, always=False):
    if not b and not always:
        return b""
    return _varint((num << 3) | 2) + _varint(len(b)) + b


def encode_request(request_id, op, deadline_ms=0, key=b"", value=b"",
                   expected=b"", expected_absent=False, stale=False):
    """One ClientRequest (without the length prefix). `op` is "put", "get",
    "delete", "cas", "status", "groups" or "ready"."""
    if op == "put":
        num, body = OP_PUT, _field_bytes(1, key) + _field_bytes(2, value)
    elif op == "get":
        num, body = OP_GET, _field_bytes(1, key) + _field_varint(2, int(stale))
    elif op == "delete":
        num, body = OP_DELETE, _field_bytes(1, key)
    elif op == "cas":
        num = OP_CAS
        body = (_field_bytes(1, key) + _field_bytes(2, expected) +
                _field_bytes(3, value) + _field_varint(4, int(expected_absent)))
    elif op == "status":
        num, body = OP_STATUS, b""
    elif op == "groups":
        num, body = OP_GROUPS, b""
    elif op == "ready":
        num, body = OP_READY, b""
    else:
        raise ValueError("unknown op %r" % op)
    return (_field_varint(1, request_id) + _field_varint(2, deadline_ms) +
            _field_bytes(num, body, always=True))


def frame(msg):
    return struct.pack(">I", len(msg)) + msg


def _fields(buf):
    """Decode one message into {field number: [values]}: ints for varint
    and fixed fields, bytes for length-delimited ones."""
    out, i, n = {}, 0, len(buf)

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            if i >= n:
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < n:
        tag = varint()
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            val = varint()
        elif wt == 2:
            ln = varint()
            if i + ln > n:
                raise ValueError("truncated field")
            val = bytes(buf[i:i + ln])
            i += ln
        elif wt == 1:
            val = struct.unpack_from("<Q", buf, i)[0]
            i += 8
        elif wt == 5:
            val = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def _one(f, num, default=0):
    v = f.get(num)
    return v[-1] if v else default


def _packed(f, num):
    """A repeated integer field, packed or not."""
    vals = []
    for v in f.get(num, []):
        if isinstance(v, int):
            vals.append(v)
            continue
        sub, j = v, 0
        while j < len(sub):
            shift = x = 0
            while True:
                b = sub[j]
                j += 1
                x |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            vals.append(x)
    return vals


def decode_response(buf):
    """A ClientResponse as a dict: request_id, error (name), message,
    leader_hint and, when present, one of value (found, value), index
    (group, index), status or groups."""
    f = _fields(buf)
    code = _one(f, 2)
    r = {"request_id": _one(f, 1), "error": ERROR_NAMES.get(code, "INTERNAL"),
         "message": _one(f, 3, b"").decode("utf-8", "replace"),
         "leader_hint": _one(f, 4)}
    if 10 in f:
        v = _fields(_one(f, 10, b""))
        r["value"] = {"found": bool(_one(v, 1)), "value": _one(v, 2, b"")}
    if 11 in f:
        v = _fields(_one(f, 11, b""))
        r["index"] = {"group": _one(v, 1), "index": _one(v, 2)}
    if 12 in f:
        v = _fields(_one(f, 12, b""))
        r["status"] = {"node_id": _one(v, 1), "ready": bool(_one(v, 2)),
                       "meta_leader": _one(v, 3),
                       "state_machine_hash": _one(v, 6),
                       "version": _one(v, 7, b"").decode(),
                       "uptime_ms": _one(v, 8)}
    if 13 in f:
        rows = []
        for raw in _fields(_one(f, 13, b"")).get(1, []):
            g = _fields(raw)
            rows.append({"group": _one(g, 1),
                         "role": ROLE_NAMES.get(_one(g, 2), "?"),
                         "leader": _one(g, 3), "term": _one(g, 4),
                         "commit": _one(g, 5), "applied": _one(g, 6),
                         "voters": _packed(g, 7), "learners": _packed(g, 8),
                         "vshards": _packed(g, 9), "last_index": _one(g, 10),
                         "placement": _packed(g, 11)})
        r["groups"] = rows
    return r
