"""The suite's own Election Safety check (cluster.leader_claims and
two_leaders) on written log files."""

import os
import tempfile
import unittest

import cluster


class LeaderClaims(unittest.TestCase):
    def logs(self, texts):
        d = tempfile.mkdtemp(prefix="rd-jepsen-leaders-")
        self.addCleanup(lambda: [os.unlink(os.path.join(d, f)) for f in
                                 os.listdir(d)] and os.rmdir(d))
        out = {}
        for i, text in texts.items():
            out[i] = os.path.join(d, "node%d.log" % i)
            with open(out[i], "w") as f:
                f.write(text)
        return out

    def test_one_leader_per_term_passes(self):
        logs = self.logs({
            1: "<6>leader elected group=0 term=2 node=1\n"
               "<6>leader changed group=3 term=4 leader=2\n",
            2: "<6>leader changed group=0 term=2 leader=1\n"
               "<6>leader elected group=3 term=4 node=2\n"
               "<6>leader changed group=3 term=5 leader=0\n",
            3: "=== jepsen: start node 3 at 1.0\n"
               "<6>leader changed group=0 term=2 leader=1\n"})
        claims = cluster.leader_claims(logs)
        self.assertEqual(claims[(0, 2)], {1: [1, 2, 3]})
        self.assertNotIn((3, 5), claims)  # leader 0: none known
        self.assertEqual(cluster.two_leaders(claims), [])

    def test_two_leaders_in_one_term_are_reported(self):
        # n3 (wiped, forgot its vote) elected in a term n1 already won.
        logs = self.logs({
            1: "<6>leader elected group=2 term=7 node=1\n",
            2: "<6>leader changed group=2 term=7 leader=1\n",
            3: "<6>leader elected group=2 term=7 node=3\n"})
        bad = cluster.two_leaders(cluster.leader_claims(logs))
        self.assertEqual(len(bad), 1)
        self.assertIn("group 2 term 7 had 2 leaders", bad[0])
        self.assertIn("n1 (per n1, n2)", bad[0])
        self.assertIn("n3 (per n3)", bad[0])


if __name__ == "__main__":
    unittest.main()
