"""The nemesis's disk-loss guarantee: a data directory is wiped only while
every group is fully replicated (cluster.replication_gaps on hand-made
`raftctl groups` views), and the replace fault ends only once it is again,
so that no two wipes ever overlap (nemesis.Nemesis on a fake cluster)."""

import unittest

import cluster
import nemesis


def row(g, leader, voters, applied=10, commit=10, learners=(), term=2,
        placement=None):
    return {"group": g, "leader": leader, "voters": list(voters),
            "learners": list(learners), "applied": applied, "commit": commit,
            "term": term, "placement": list(placement or [])}


def full(nodes=(1, 2, 3), groups=3, leader=1):
    """Every node hosts every group as a voter, all caught up."""
    return {i: [row(g, leader, nodes, placement=nodes if g else None)
                for g in range(groups)] for i in nodes}


class Gaps(unittest.TestCase):
    def test_full_cluster_has_none(self):
        self.assertEqual(cluster.replication_gaps(full(), 3, 3), [])
        self.assertEqual(cluster.replication_gaps(
            full(), 3, 3, floor={0: 10, 1: 10, 2: 10}), [])

    def test_wiped_node_back_empty(self):
        """The wiped node answers, hosts its groups empty, and the others
        still list only two voters while it is a learner of group 1."""
        v = full()
        v[2] = [row(g, 0, [], applied=0, commit=0) for g in range(3)]
        v[1][1] = row(1, 1, [1, 3], learners=[2], placement=[1, 2, 3])
        v[3][1] = row(1, 1, [1, 3], learners=[2], placement=[1, 2, 3])
        gaps = cluster.replication_gaps(v, 3, 3)
        print("\n".join(gaps))
        self.assertIn("group 1: learners [2]", gaps)
        self.assertIn("group 1: voters [1, 3], fewer than 3", gaps)
        self.assertIn("group 0: n2's replica is not a voter yet", gaps)
        del v[2][2]
        self.assertIn("group 2: voter n2 does not host it",
                      cluster.replication_gaps(v, 3, 3))

    def test_old_replica_still_listed(self):
        """Before the group-0 leader has replaced the wiped replica, every
        configuration still names n2 (the old replica): the rows carry no
        incarnation, but n2's new replica does not list itself."""
        v = full()
        v[2] = [row(g, 0, [], applied=0, commit=0) for g in range(3)]
        gaps = cluster.replication_gaps(v, 3, 3)
        self.assertEqual(gaps, ["group %d: n2's replica is not a voter yet"
                                % g for g in range(3)])

    def test_a_group_moved_elsewhere_is_seen(self):
        """Five nodes: group 1 lived on 1, 2, 3; n1 was wiped and the group
        is rebuilt on n5, still a learner. n1 hosts no replica of it, so
        n1's own view (every group it hosts: a voter) shows nothing wrong;
        the cluster is not fully replicated until n5 is a voter."""
        nodes = (1, 2, 3, 4, 5)
        v = {i: [row(0, 2, nodes)] for i in nodes}
        v[2].append(row(1, 2, [2, 3], learners=[5], placement=[2, 3, 5]))
        v[3].append(row(1, 2, [2, 3], learners=[5], placement=[2, 3, 5]))
        v[5].append(row(1, 2, [2, 3], learners=[5], placement=[2, 3, 5],
                        applied=0))
        self.assertTrue(all(2 == r["leader"] and 1 in r["voters"]
                            for r in v[1]))  # n1's own view looks complete
        gaps = cluster.replication_gaps(v, 3, 2)
        self.assertIn("group 1: learners [5]", gaps)
        self.assertIn("group 1: voters [2, 3], fewer than 3", gaps)

    def test_voters_not_yet_the_placement(self):
        v = full()
        for i in v:
            v[i][2] = row(2, 1, [1, 2, 3], placement=[1, 2, 4])
        self.assertEqual(cluster.replication_gaps(v, 3, 3), [
            "group 2: voters [1, 2, 3], placement [1, 2, 4]"])

    def test_lagging_voter_and_silent_node(self):
        v = full()
        v[3][2] = row(2, 1, [1, 2, 3], applied=7)
        self.assertEqual(cluster.replication_gaps(v, 3, 3, floor={2: 9}),
                         ["group 2: n3 applied 7 of 9"])
        v[2] = None  # paused, down or not answering
        self.assertEqual(cluster.replication_gaps(v, 3, 3),
                         ["n2 answers no groups"])

    def test_no_leader_and_missing_group(self):
        v = full()
        for i in v:
            v[i][1] = row(1, 0, [1, 2, 3])
            del v[i][2]
        self.assertEqual(cluster.replication_gaps(v, 3, 3), [
            "2 groups known, 3 expected", "group 1: no leader"])

    def test_leader_commits(self):
        v = full()
        v[1][0] = row(0, 1, [1, 2, 3], commit=42)
        v[2][0] = row(0, 1, [1, 2, 3], commit=40)
        self.assertEqual(cluster.leader_commits(v), {0: 42, 1: 10, 2: 10})


class FakeCluster:
    """What the replace fault calls, recorded; `gaps` is what
    wait_replicated answers."""
    n = 3

    def __init__(self, gaps=()):
        self.calls, self.gaps = [], list(gaps)

    def kill(self, i):
        self.calls.append(("kill", i))

    def wipe(self, i):
        self.calls.append(("wipe", i))

    def start(self, i):
        self.calls.append(("start", i))

    def wait_node_ready(self, i, secs):
        self.calls.append(("ready", i))
        return True

    def wait_replicated(self, secs):
        self.calls.append(("replicated",))
        return self.gaps


class NoOverlappingWipes(unittest.TestCase):
    class Stop:
        def wait(self, secs):
            return False

        def is_set(self):
            return False

    def test_each_wipe_waits_for_the_last(self):
        c = FakeCluster()
        nem = nemesis.Nemesis(c, 1, lambda text: None)
        sched = [(0, "replace", 0, 0.1), (0, "replace", 0, 0.5),
                 (0, "replace", 0, 0.9)]
        nem.run(sched, 0, self.Stop())
        self.assertIsNone(nem.error)
        wipes = [k for k, c in enumerate(c.calls) if c[0] == "wipe"]
        self.assertEqual([c.calls[k][1] for k in wipes], [1, 2, 3])
        for a, b in zip(wipes, wipes[1:]):
            self.assertIn(("replicated",), c.calls[a:b])
        self.assertEqual(nem.unreplicated, set())

    def test_no_wipe_after_a_failed_rebuild(self):
        c = FakeCluster(gaps=["group 1: learners [1]"])
        nem = nemesis.Nemesis(c, 1, lambda text: None)
        nem.run([(0, "replace", 0, 0.1), (0, "replace", 0, 0.5)], 0,
                self.Stop())
        self.assertIn("not fully replicated again", nem.error)
        self.assertIn("group 1: learners [1]", nem.error)
        self.assertEqual([x for x in c.calls if x[0] == "wipe"], [("wipe", 1)])
        self.assertEqual(nem.unreplicated, {1})
        with self.assertRaises(RuntimeError):
            nem.start("replace", 0.5)
        self.assertEqual([x for x in c.calls if x[0] == "wipe"], [("wipe", 1)])


class FakeCluster4(FakeCluster):
    """Four nodes, with what the decommission fault calls as well."""
    n = 4

    def __init__(self, gaps=(), exit_rc=0):
        super().__init__(gaps)
        self.exit_rc = exit_rc

    def running(self, i):
        return True

    def node(self, i):
        class N:
            leaving = False
        return N()

    def remove(self, i, via):
        self.calls.append(("remove", i, via))
        return 0, "ok"

    def wait_removed(self, i, secs):
        self.calls.append(("exited", i))
        return self.exit_rc

    def rejoin_config(self, i):
        self.calls.append(("join-config", i))

    def group_views(self):
        return {i: [row(0, 1, [1, 2, 3]), row(1, 1, [1, 2, i])]
                for i in range(1, 5)}


class Decommission(unittest.TestCase):
    Stop = NoOverlappingWipes.Stop

    def test_left_out_below_four_nodes(self):
        """A 3-node run draws the schedule it drew before decommission
        existed: same kinds, same seed, same faults."""
        kinds = nemesis.parse("membership")
        self.assertEqual(nemesis.for_nodes(kinds, 3), ["replace"])
        self.assertEqual(nemesis.for_nodes(kinds, 4),
                         ["replace", "decommission"])
        self.assertEqual(
            nemesis.schedule(7, 30, nemesis.for_nodes(kinds, 3)),
            nemesis.schedule(7, 30, ["replace"]))
        self.assertNotIn("decommission", [
            k for _, k, _, _ in nemesis.schedule(
                7, 30, nemesis.for_nodes(nemesis.parse("mixed"), 3))])

    def test_removes_then_wipes_and_joins_again(self):
        c = FakeCluster4()
        nem = nemesis.Nemesis(c, 1, lambda text: None)
        nem.run([(0, "decommission", 0, 0.1)], 0, self.Stop())
        self.assertIsNone(nem.error)
        kinds = [x[0] for x in c.calls]
        self.assertEqual(kinds[:6], ["remove", "exited", "wipe", "join-config",
                                     "start", "ready"])
        self.assertEqual(c.calls[0][1], 1)
        self.assertNotEqual(c.calls[0][2], 1)  # asked through another node
        self.assertIn("replicated", kinds[6:])
        self.assertEqual(nem.unreplicated, set())

    def test_a_removed_node_that_does_not_exit_fails_the_fault(self):
        """No wipe, and no wipe after it: the node may still hold the only
        replicas of something."""
        c = FakeCluster4(exit_rc=None)
        nem = nemesis.Nemesis(c, 1, lambda text: None)
        nem.run([(0, "decommission", 0, 0.1), (0, "replace", 0, 0.6)], 0,
                self.Stop())
        self.assertIn("did not exit 0", nem.error)
        self.assertEqual([x for x in c.calls if x[0] == "wipe"], [])
        self.assertEqual(nem.unreplicated, {1})


if __name__ == "__main__":
    unittest.main()
