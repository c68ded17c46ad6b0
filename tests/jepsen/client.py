"""A raftd client over the node's Unix socket (tests/jepsen/proto.py).

One Client is used by one thread at a time and has at most one request
outstanding, as a Jepsen process does. A timeout or a dropped connection
closes the socket (a late answer is never read as the answer to a later
request). Failures without an answer get a pseudo error name, classed in
tests/jepsen/outcomes.py:
  NOT_SENT        connecting or writing the frame failed: the node cannot
                  have decoded the request
  CLIENT_TIMEOUT  sent, no answer within the client's timeout
  DISCONNECTED    sent, the connection broke before the answer
"""

import socket
import struct
import time

import proto


class Client:
    def __init__(self, path, timeout=5.0, deadline_ms=2000):
        self.path = path
        self.timeout = timeout
        self.deadline_ms = deadline_ms
        self.sock = None
        self.next_id = 1

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _recv_exact(self, n, end):
        buf = bytearray()
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the node")
            buf += chunk
        return bytes(buf)

    def _send(self, msg, end):
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(max(0.01, end - time.monotonic()))
                s.connect(self.path)
            except OSError:
                s.close()
                raise
            self.sock = s
        self.sock.settimeout(max(0.01, end - time.monotonic()))
        self.sock.sendall(proto.frame(msg))

    def call(self, op, timeout=None, deadline_ms=None, **kw):
        """Send one request and wait for its answer: the decoded
        ClientResponse (proto.decode_response), or a dict of the same shape
        with one of the pseudo errors above."""
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        rid = self.next_id
        self.next_id += 1
        msg = proto.encode_request(
            rid, op, self.deadline_ms if deadline_ms is None else deadline_ms,
            **kw)
        try:
            self._send(msg, end)
        except OSError as e:
            self.close()
            return _pseudo(rid, "NOT_SENT", str(e))
        try:
            while True:
                (n,) = struct.unpack(">I", self._recv_exact(4, end))
                resp = proto.decode_response(self._recv_exact(n, end))
                if resp["request_id"] == rid:
                    return resp
                # Only an answer with request_id 0 (to a request the node
                # could not decode) can get here; skip it.
        except socket.timeout:
            self.close()
            return _pseudo(rid, "CLIENT_TIMEOUT", "no answer in %.1fs" % timeout)
        except (OSError, ConnectionError, ValueError, struct.error) as e:
            self.close()
            return _pseudo(rid, "DISCONNECTED", str(e))


def _pseudo(rid, error, message):
    return {"request_id": rid, "error": error, "message": message,
            "leader_hint": 0}
