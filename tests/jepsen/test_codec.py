"""The suite's protobuf codec (tests/jepsen/proto.py) against the generated
protobuf-c code, through tests/jepsen/codec.c (built as
$RD_BUILD/jepsen/jepsen-codec by tests/jepsen/jepsen.mk)."""

import os
import subprocess
import unittest

import proto

CODEC = os.path.join(os.environ.get("RD_BUILD", "build"), "jepsen",
                     "jepsen-codec")


def run(mode, stdin=""):
    return subprocess.run([CODEC, mode], input=stdin.encode(), check=True,
                          stdout=subprocess.PIPE).stdout.decode().splitlines()


class Requests(unittest.TestCase):
    def test_requests_decode_in_protobuf_c(self):
        big = "x" * 300  # a length over one varint byte
        cases = [
            (dict(request_id=1, op="put", key=b"k1", value=b"v1"),
             "id=1 deadline=0 op=put key=6b31 value=7631"),
            (dict(request_id=300, op="get", deadline_ms=2500, key=b"k"),
             "id=300 deadline=2500 op=get key=6b stale=0"),
            (dict(request_id=2, op="get", key=b"k", stale=True),
             "id=2 deadline=0 op=get key=6b stale=1"),
            (dict(request_id=3, op="delete", key=b"abc"),
             "id=3 deadline=0 op=delete key=616263"),
            (dict(request_id=4, op="cas", key=b"k", expected=b"old",
                  value=b"new"),
             "id=4 deadline=0 op=cas key=6b expected=6f6c64 value=6e6577 "
             "absent=0"),
            (dict(request_id=5, op="cas", key=b"k", value=b"n",
                  expected_absent=True),
             "id=5 deadline=0 op=cas key=6b expected= value=6e absent=1"),
            (dict(request_id=(1 << 64) - 1, op="status"),
             "id=18446744073709551615 deadline=0 op=status"),
            (dict(request_id=6, op="groups"), "id=6 deadline=0 op=groups"),
            (dict(request_id=7, op="ready", deadline_ms=1000),
             "id=7 deadline=1000 op=ready"),
            (dict(request_id=8, op="put", key=big.encode(), value=b""),
             "id=8 deadline=0 op=put key=%s value=" % big.encode().hex()),
        ]
        lines = run("requests", "".join(
            proto.encode_request(**kw).hex() + "\n" for kw, _ in cases))
        self.assertEqual(lines, [want for _, want in cases])


class Responses(unittest.TestCase):
    def test_responses_from_protobuf_c_decode(self):
        got = [proto.decode_response(bytes.fromhex(h))
               for h in run("responses")]
        self.assertEqual(len(got), 7)
        self.assertEqual(got[0]["request_id"], 7)
        self.assertEqual(got[0]["error"], "OK")
        self.assertEqual(got[0]["value"], {"found": True, "value": b"abc"})
        self.assertEqual(got[1]["error"], "CAS_FAILED")
        self.assertEqual(got[1]["message"], "value differs")
        self.assertEqual(got[1]["value"], {"found": True, "value": b"cur"})
        self.assertEqual((got[2]["error"], got[2]["leader_hint"]),
                         ("NOT_LEADER", 3))
        self.assertNotIn("value", got[2])
        self.assertEqual(got[3]["index"], {"group": 5, "index": 1234567890123})
        st = got[4]["status"]
        self.assertEqual((st["node_id"], st["ready"], st["meta_leader"]),
                         (2, True, 3))
        self.assertEqual(st["state_machine_hash"], 0xfedcba9876543210)
        self.assertEqual((st["version"], st["uptime_ms"]), ("0.1.0", 99))
        g0, g1 = got[5]["groups"]
        self.assertEqual((g0["group"], g0["role"], g0["leader"], g0["term"],
                          g0["commit"], g0["applied"], g0["voters"],
                          g0["last_index"]),
                         (0, "leader", 2, 7, 40, 39, [1, 2, 3], 41))
        self.assertEqual((g1["group"], g1["role"], g1["leader"], g1["term"],
                          g1["voters"], g1["learners"], g1["vshards"]),
                         (1, "follower", 3, 300, [2, 3], [1], [0, 511, 1023]))
        self.assertEqual((g0["placement"], g1["placement"]), ([], [1, 2, 3]))
        self.assertEqual(got[6]["request_id"], (1 << 63) + 5)
        self.assertEqual(got[6]["value"], {"found": False, "value": b""})


if __name__ == "__main__":
    unittest.main()
