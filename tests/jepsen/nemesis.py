"""Faults on a seeded schedule.

A schedule is a list of (start s, kind, duration s, choice) drawn from the
run's seed before the run starts, so a seed names the same faults in the
same order (the targets that depend on who leads are resolved when the
fault starts, and printed). One fault at a time (a fault due while another
is still healing starts after it); each is undone when its
duration ends (killed nodes restarted, paused ones continued, the network
healed, the disk made fast again), and heal() undoes whatever is left.

Kinds:
  kill                  SIGKILL a random node; restart it afterwards
  kill-leader           the same, aimed at the leader of group 0 or of a
                        data group
  pause                 SIGSTOP a random node; SIGCONT afterwards
  pause-leader          the same, aimed at a leader
  partition-one         isolate a random node (both directions)
  partition-leader0     isolate the leader of group 0
  partition-leader-data isolate the leader of a random data group
  partition-majority    split the nodes into a minority and a majority
  partition-oneway      one node's datagrams to the others are dropped, or
                        the others' to it (it still hears, or still talks)
  slowdisk              one node's fsync/fdatasync sleep 20..300 ms first
                        (tests/jepsen/slowfs.c)
  replace               SIGKILL a random node, wipe its data directory and
                        restart it with the same config: it must rejoin as
                        a new replica (learner, snapshot, voter) while the
                        clients write through the others. The fault ends
                        only when the node answers ready and the whole
                        cluster is fully replicated again
                        (cluster.replication_gaps from every node's view:
                        every group led, no learner, its full voter set,
                        each voter caught up to what its leader had
                        committed), as an operator waits before replacing
                        another disk; a cluster not back within
                        REPLACE_READY_S fails the run and ends the schedule
                        (family membership)
  decommission          4 nodes or more (runs have 3 or 5): `raftctl members remove` a random
                        node through another; the placement driver moves its
                        replicas to the others, it leaves group 0 and must
                        exit 0 by itself. Then its data directory is wiped
                        and it joins again with [cluster] join, gets its
                        share of replicas back (the sources close theirs),
                        and the fault ends, as replace's, once it is ready
                        and the cluster fully replicated with it a voter of
                        some data group (family membership; left out below
                        4 nodes)

Disks: replace is the only fault that loses a disk (kill and kill-leader
keep the data directory, slowdisk still syncs). Faults never overlap, and
a wipe while an earlier wiped node is not confirmed rebuilt is refused
(Nemesis.unreplicated), so no group ever has more than one replica's disk
lost at a time: a majority of every group's replicas keeps every committed
entry. tests/jepsen/README.md says what each fault guarantees.

The membership family holds replace and decommission (removing a node,
then joining it again with [cluster] join). "mixed" plays every kind,
both included. decommission needs a node the others can take the
replicas of: below 4 nodes it is left out of every schedule (NEEDS_NODES).

JEPSEN_NEMESIS names a family (none, kill, pause, partition, slowdisk,
membership, mixed) or a comma-separated list of families and kinds.
"""

import random
import time

from client import Client

REPLACE_READY_S = 90  # bound on a replaced node's way back to ready
DECOMMISSION_S = 120  # bound on a removed node's exit once its replicas moved

FAMILIES = {
    "none": [],
    "kill": ["kill", "kill-leader"],
    "pause": ["pause", "pause-leader"],
    "partition": ["partition-one", "partition-leader0", "partition-leader-data",
                  "partition-majority", "partition-oneway"],
    "slowdisk": ["slowdisk"],
    "membership": ["replace", "decommission"],
}
FAMILIES["mixed"] = (FAMILIES["kill"] + FAMILIES["pause"] +
                     FAMILIES["partition"] + FAMILIES["slowdisk"] +
                     FAMILIES["membership"])
KINDS = sorted(set(k for v in FAMILIES.values() for k in v))


# Kinds that need at least this many nodes; schedules for fewer leave them
# out, so a 3-node run draws the same schedule as before they existed.
NEEDS_NODES = {"decommission": 4}


def for_nodes(kinds, n):
    """`kinds` without those that `n` nodes cannot play."""
    return [k for k in kinds if NEEDS_NODES.get(k, 0) <= n]


def parse(spec):
    kinds = []
    for part in spec.split(","):
        part = part.strip()
        if part in FAMILIES:
            kinds += FAMILIES[part]
        elif part in KINDS:
            kinds.append(part)
        else:
            raise ValueError("unknown nemesis %r (families: %s; kinds: %s)" %
                             (part, ", ".join(sorted(FAMILIES)),
                              ", ".join(KINDS)))
    return sorted(set(kinds), key=kinds.index)


def schedule(seed, seconds, kinds):
    """The run's faults: [(start, kind, duration, choice)]; choice in [0, 1)
    picks the target."""
    rng = random.Random(seed * 7919 + 17)
    out = []
    if not kinds:
        return out
    t = rng.uniform(1.0, 2.5)
    while t < seconds - 3.0:
        kind = rng.choice(kinds)
        dur = min(rng.uniform(1.5, 5.0), max(1.0, seconds - 1.5 - t))
        out.append((round(t, 2), kind, round(dur, 2), rng.random()))
        t += dur + rng.uniform(1.0, 3.0)
    return out


def leaders(cluster):
    """{group: leader} as the first answering node sees them (asked over
    the client protocol: the rows of raftctl groups)."""
    for nd in cluster.nodes:
        if nd.proc is None or nd.paused:
            continue
        c = Client(nd.sock, timeout=1.0)
        r = c.call("groups")
        c.close()
        if r["error"] == "OK" and "groups" in r:
            got = {g["group"]: g["leader"] for g in r["groups"] if g["leader"]}
            if got:
                return got
    return {}


class Nemesis:
    def __init__(self, cluster, seed, log):
        self.c = cluster
        self.rng = random.Random(seed * 104729 + 3)
        self.log = log  # log(text): one line of the run's schedule
        self.undo = []  # what heal() still has to do
        self.faults = 0
        self.dropped = 0  # datagrams dropped by partitions
        self.slowed = 0  # syncs delayed by the slow-disk shim
        self.played = []  # [start s, end s or None, kind, what]
        self.restarted = {}  # node: when replace restarted it (monotonic)
        self.unreplicated = set()  # wiped nodes not yet confirmed rebuilt

    def _pick(self, choice):
        return int(choice * self.c.n) + 1

    def _leader(self, choice, data):
        ls = leaders(self.c)
        if data:
            groups = sorted(g for g in ls if g != 0)
            if groups:
                g = groups[int(choice * len(groups))]
                return ls[g], "leader of group %d" % g
        elif 0 in ls:
            return ls[0], "leader of group 0"
        return self._pick(choice), "no leader known: random"

    def start(self, kind, choice):
        c, n = self.c, self.c.n
        self.faults += 1
        if kind in ("kill", "kill-leader", "pause", "pause-leader"):
            if kind.endswith("leader"):
                i, why = self._leader(choice, self.rng.random() < 0.5)
            else:
                i, why = self._pick(choice), "random"
            if kind.startswith("kill"):
                c.kill(i)
                self.undo.append(("start", i))
                return "SIGKILL n%d (%s)" % (i, why)
            c.pause(i)
            self.undo.append(("resume", i))
            return "SIGSTOP n%d (%s)" % (i, why)
        if kind in ("partition-one", "partition-leader0",
                    "partition-leader-data", "partition-oneway"):
            if kind == "partition-leader0":
                i, why = self._leader(choice, False)
            elif kind == "partition-leader-data":
                i, why = self._leader(choice, True)
            else:
                i, why = self._pick(choice), "random"
            others = [j for j in range(1, n + 1) if j != i]
            if kind == "partition-oneway":
                if self.rng.random() < 0.5:
                    pairs = {(i, j) for j in others}
                    what = "n%d -> others dropped (%s)" % (i, why)
                else:
                    pairs = {(j, i) for j in others}
                    what = "others -> n%d dropped (%s)" % (i, why)
            else:
                pairs = {(i, j) for j in others} | {(j, i) for j in others}
                what = "isolate n%d (%s)" % (i, why)
            c.partition(pairs)
            self.undo.append(("net", None))
            return what
        if kind == "partition-majority":
            ids = list(range(1, n + 1))
            self.rng.shuffle(ids)
            minority, majority = ids[:(n - 1) // 2], ids[(n - 1) // 2:]
            pairs = {(a, b) for a in minority for b in majority}
            pairs |= {(b, a) for a, b in pairs}
            c.partition(pairs)
            self.undo.append(("net", None))
            return "split %s | %s" % (sorted(minority), sorted(majority))
        if kind == "slowdisk":
            i = self._pick(choice)
            ms = self.rng.choice([20, 50, 100, 300])
            c.set_slow(i, ms)
            self.undo.append(("fast", i))
            return "slow disk n%d: %d ms per fsync" % (i, ms)
        if kind == "replace":
            i = self._pick(choice)
            if self.unreplicated:
                # heal() confirms every wipe before the next fault starts, and
                # a failed confirmation ends the schedule: a second disk is
                # never lost while a group still rebuilds the first.
                raise RuntimeError(
                    "refusing to wipe n%d: wiped %s not yet replicated again"
                    % (i, ", ".join("n%d" % j for j in
                                    sorted(self.unreplicated))))
            c.kill(i)
            self.unreplicated.add(i)
            c.wipe(i)
            c.start(i)
            self.restarted[i] = time.monotonic()
            self.undo.append(("ready", i))
            return "replace n%d: SIGKILL, data directory wiped, restarted" % i
        if kind == "decommission":
            i = self._pick(choice)
            if self.unreplicated:
                raise RuntimeError(
                    "refusing to decommission n%d: wiped %s not yet "
                    "replicated again" % (i, ", ".join(
                        "n%d" % j for j in sorted(self.unreplicated))))
            others = [j for j in range(1, n + 1) if j != i and c.running(j)]
            via = others[int(self.rng.random() * len(others))]
            rc, out = c.remove(i, via)
            if rc != 0:
                c.node(i).leaving = False
                raise RuntimeError("members remove %d: exit %d: %s" %
                                   (i, rc, out))
            self.unreplicated.add(i)
            self.undo.append(("rejoin", i))
            return "decommission n%d (members remove through n%d)" % (i, via)
        raise ValueError(kind)

    def _rejoin(self, i):
        """The second half of decommission: node i's exit, its wipe, its
        join, and the cluster whole again with it."""
        t0 = time.monotonic()
        rc = self.c.wait_removed(i, DECOMMISSION_S)
        if rc != 0:
            raise RuntimeError(
                "decommissioned node n%d did not exit 0 within %ds of its "
                "removal (exit %s): its replicas did not all move, or it did "
                "not see itself removed (see its log)" % (i, DECOMMISSION_S, rc))
        t1 = time.monotonic()
        self.c.wipe(i)
        self.c.rejoin_config(i)
        self.c.start(i)
        t2 = time.monotonic()
        if not self.c.wait_node_ready(i, REPLACE_READY_S):
            raise RuntimeError(
                "decommissioned node n%d did not join again: not ready %ds "
                "after its restart with [cluster] join" % (i, REPLACE_READY_S))
        end = time.monotonic() + REPLACE_READY_S
        while True:
            gaps = self.c.wait_replicated(max(1.0, end - time.monotonic()))
            views = {} if gaps else self.c.group_views()
            mine = [r for r in (views.get(i) or [])
                    if r["group"] != 0 and i in r["voters"]]
            if not gaps and mine:
                break
            if time.monotonic() > end:
                raise RuntimeError(
                    "decommissioned node n%d joined again but did not get "
                    "its share within %ds: %s" % (
                        i, REPLACE_READY_S,
                        "; ".join(gaps) or "no data-group voter replica"))
            time.sleep(0.5)
        self.unreplicated.discard(i)
        self.log("%6s %-22s n%d exited %.1fs after its removal, joined again "
                 "and every group fully replicated %.1fs after its restart" %
                 ("", "decommissioned", i, t1 - t0, time.monotonic() - t2))

    def heal(self):
        """Undo every fault still in effect (in reverse order)."""
        while self.undo:
            what, i = self.undo.pop()
            if what == "start":
                if not self.c.running(i):
                    self.c.start(i)
            elif what == "resume":
                self.c.resume(i)
            elif what == "net":
                self.dropped += self.c.heal_net()
            elif what == "ready":
                t0 = self.restarted.get(i, time.monotonic())
                if not self.c.wait_node_ready(
                        i, max(1.0, REPLACE_READY_S - (time.monotonic() - t0))):
                    raise RuntimeError(
                        "replaced node n%d (data directory wiped) was not "
                        "ready %ds after its restart: it did not rejoin as a "
                        "new replica (see its log)" % (i, REPLACE_READY_S))
                t1 = time.monotonic()
                gaps = self.c.wait_replicated(
                    max(1.0, REPLACE_READY_S - (t1 - t0)))
                if gaps:
                    raise RuntimeError(
                        "replaced node n%d (data directory wiped): the "
                        "cluster was not fully replicated again %ds after "
                        "its restart: %s" % (i, REPLACE_READY_S,
                                             "; ".join(gaps)))
                self.unreplicated.discard(i)
                # Both are checked from the fault's end on: a figure no
                # larger than the fault's duration says "by then".
                self.log("%6s %-22s n%d ready %.1fs after its restart, "
                         "every group fully replicated %.1fs after it" % (
                             "", "replaced", i, t1 - t0, time.monotonic() - t0))
            elif what == "rejoin":
                self._rejoin(i)
            elif what == "fast":
                self.c.set_slow(i, 0)
                self.slowed = sum(self.c.slowed(j) for j in
                                  range(1, self.c.n + 1))

    def run(self, sched, t_start, stop):
        """Play `sched` (times relative to t_start, a time.monotonic()
        value) until done or stop (a threading.Event) is set. An exception
        is kept in self.error for the verdict."""
        self.error = None
        try:
            self._run(sched, t_start, stop)
        except Exception as e:  # reported as a problem of the run
            self.error = "nemesis failed: %r" % e
            self.heal()

    def _run(self, sched, t_start, stop):
        for at, kind, dur, choice in sched:
            if stop.wait(max(0.0, t_start + at - time.monotonic())):
                break
            t0 = time.monotonic() - t_start
            what = self.start(kind, choice)
            self.log("%6.2fs %-22s %-45s for %.2fs" % (t0, kind, what, dur))
            self.played.append([t0, None, kind, what])
            stopped = stop.wait(dur)
            self.heal()
            self.played[-1][1] = time.monotonic() - t_start
            if stopped:
                break
        self.heal()

    def during(self, t):
        """The fault in effect at t seconds (or healed less than a second
        before), as text; "" when none."""
        for t0, t1, kind, what in reversed(self.played):
            if t0 <= t and (t1 is None or t <= t1 + 1.0):
                return "%s: %s%s" % (kind, what, "" if t1 is None or t <= t1
                                     else ", healed %.2fs before" % (t - t1))
        return ""
