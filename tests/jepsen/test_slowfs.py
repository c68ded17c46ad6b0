"""The slow-disk shim (tests/jepsen/slowfs.c, built as
$RD_BUILD/jepsen/slowfs.so) interposes fsync and fdatasync in a dynamically
linked program, delays them only while its control file holds a delay,
and still syncs. Counted, not timed: the shim records every call it
delayed."""

import os
import subprocess
import sys
import tempfile
import unittest

SHIM = os.path.join(os.environ.get("RD_BUILD", "build"), "jepsen", "slowfs.so")

PROG = """
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)
os.write(fd, b"x")
os.fsync(fd)
os.fdatasync(fd)
os.fsync(fd)
print("synced")
"""


class Shim(unittest.TestCase):
    def run_with(self, delay):
        with tempfile.TemporaryDirectory() as d:
            ctl, cnt = os.path.join(d, "slow"), os.path.join(d, "count")
            with open(ctl, "w") as f:
                f.write(delay)
            env = dict(os.environ, LD_PRELOAD=os.path.abspath(SHIM),
                       RD_JEPSEN_SLOW_FILE=ctl, RD_JEPSEN_SLOW_COUNT=cnt)
            out = subprocess.run([sys.executable, "-c", PROG,
                                  os.path.join(d, "data")], env=env,
                                 check=True, stdout=subprocess.PIPE).stdout
            self.assertEqual(out, b"synced\n")
            return os.path.getsize(cnt) if os.path.exists(cnt) else 0

    def test_delays_every_sync_while_slow(self):
        self.assertEqual(self.run_with("1\n"), 3)

    def test_no_delay_when_fast(self):
        self.assertEqual(self.run_with("0\n"), 0)
        self.assertEqual(self.run_with(""), 0)


if __name__ == "__main__":
    unittest.main()
