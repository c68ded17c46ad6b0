"""N raftd processes on loopback for one run, and the nftables table that
partitions them.

Every node gets its own QUIC (UDP) port on 127.0.0.1, a config written
here, development certificates from conf/raftd-certs, a data directory,
a socket and a log file, all under the run's temporary directory. Every
node runs with the slow-disk shim (tests/jepsen/slowfs.c) preloaded; its
delay file starts empty (no delay).

Partitions: one nftables table per run, named raftd_jepsen_<pid>_<run>,
with one input chain whose rules drop UDP datagrams between two of this
run's QUIC ports (source port and destination port both ours, both on
127.0.0.1), so that other traffic on the machine is never touched. The
table is deleted on every exit path (Cluster.close, called from finally
blocks, atexit and the SIGINT/SIGTERM handlers of jepsen.py).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from client import Client

_LIVE = set()  # every Cluster not yet closed, for the exit handlers


def _locked(fn):
    def wrap(self, *a, **kw):
        with self.lock:
            return fn(self, *a, **kw)
    wrap.__doc__ = fn.__doc__
    return wrap


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def close_all():
    for c in list(_LIVE):
        c.close()


class Node:
    def __init__(self, i, d, port):
        self.id = i
        self.port = port
        self.conf = os.path.join(d, "node%d.conf" % i)
        self.sock = os.path.join(d, "n%d.sock" % i)
        self.log = os.path.join(d, "node%d.log" % i)
        self.data = os.path.join(d, "data%d" % i)
        self.slow = os.path.join(d, "slow%d" % i)
        self.slow_count = os.path.join(d, "slow%d.count" % i)
        self.proc = None
        self.paused = False
        self.deaths = []  # (time, description) of exits nobody asked for
        self.wiped = 0  # times the nemesis deleted its data directory
        self.leaving = False  # removed by the nemesis: its exit 0 is asked for


_LEADER_RE = re.compile(r"leader (elected|changed) group=(\d+) term=(\d+) "
                        r"(?:node|leader)=(\d+)")


def leader_claims(logs):
    """{(group, term): {leader: [nodes whose log names it]}} from the
    "leader elected group=G term=T node=N" (N's own win) and "leader changed
    group=G term=T leader=L" (a follower's view) lines of {node: log path}.
    Raft allows at most one leader per term (Election Safety, Raft paper
    5.2, thesis 3.4), so any (group, term) with two leaders is a bug; a wiped
    node that voted twice in one term would show as one."""
    out = {}
    for i, path in logs.items():
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        for m in _LEADER_RE.finditer(text):
            g, t, who = int(m.group(2)), int(m.group(3)), int(m.group(4))
            if who == 0:
                continue
            out.setdefault((g, t), {}).setdefault(who, []).append(i)
    return out


def two_leaders(claims):
    """[text] for each (group, term) that had more than one leader."""
    return ["group %d term %d had %d leaders: %s" % (
        g, t, len(ls), "; ".join("n%d (per %s)" % (l, ", ".join(
            "n%d" % x for x in sorted(set(by)))) for l, by in sorted(ls.items())))
        for (g, t), ls in sorted(claims.items()) if len(ls) > 1]


def replication_gaps(views, rf, ngroups, floor=None):
    """What keeps the cluster from being fully replicated, as [text] ([]
    once it is), from {node: its raftctl groups rows, or None when it did
    not answer}. Fully replicated: every node answers; there are `ngroups`
    groups; each has a leader whose own row says so, no learner, at least
    `rf` voters and, for a data group, the voters its placement names;
    every voter hosts the group and its own row lists it as a voter; and
    with `floor` ({group: index}), every voter has applied at least
    floor[group]. Until then some group keeps fewer than rf full copies of
    its log, and destroying another node's disk could leave a minority of
    them: the nemesis wipes a second disk only once this is [] again
    (tests/jepsen/README.md)."""
    out = []
    by_group = {}
    for i, rows in sorted(views.items()):
        if rows is None:
            out.append("n%d answers no groups" % i)
            continue
        for r in rows:
            by_group.setdefault(r["group"], {})[i] = r
    if out:
        return out
    if len(by_group) != ngroups:
        out.append("%d groups known, %d expected" % (len(by_group), ngroups))
    for g, rows in sorted(by_group.items()):
        led = [r for i, r in rows.items() if r["leader"] == i]
        if not led:
            out.append("group %d: no leader" % g)
            continue
        lr = max(led, key=lambda r: r["term"])  # a deposed one lags a term
        voters = sorted(lr["voters"])
        if lr["learners"]:
            out.append("group %d: learners %s" % (g, sorted(lr["learners"])))
        if len(voters) < rf:
            out.append("group %d: voters %s, fewer than %d" % (g, voters, rf))
        if lr.get("placement") and sorted(lr["placement"]) != voters:
            out.append("group %d: voters %s, placement %s" % (
                g, voters, sorted(lr["placement"])))
        for v in voters:
            if v not in rows:
                out.append("group %d: voter n%d does not host it" % (g, v))
            elif v not in rows[v]["voters"]:
                # The leader's configuration names the id, but the replica
                # there (a wiped node's new one, empty or a learner) is not
                # that voter yet: ids carry no incarnation in these rows.
                out.append("group %d: n%d's replica is not a voter yet" % (
                    g, v))
            elif floor and rows[v]["applied"] < floor.get(g, 0):
                out.append("group %d: n%d applied %d of %d" % (
                    g, v, rows[v]["applied"], floor[g]))
    return out


def leader_commits(views):
    """{group: its leader's commit index} from the same views."""
    out = {}
    for i, rows in views.items():
        for r in rows or []:
            if r["leader"] == i:
                out[r["group"]] = r["commit"]
    return out


class Cluster:
    def __init__(self, n, build, src, workdir, tag, data_groups=4,
                 log_level="info", extra_conf=""):
        self.n, self.build, self.src, self.dir = n, build, src, workdir
        self.data_groups = data_groups
        self.table = "raftd_jepsen_%d_%s" % (os.getpid(), tag)
        self.nft_ready = False
        # Held by whoever starts, stops, signals or reaps a process, so that
        # an exit the nemesis caused is never taken for a crash.
        self.lock = threading.RLock()
        self.cut = set()  # directed (from, to) node pairs dropped
        self.nodes = [Node(i, workdir, free_udp_port())
                      for i in range(1, n + 1)]
        subprocess.run([os.path.join(src, "conf/raftd-certs"), "all",
                        os.path.join(workdir, "certs"), str(n)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peers = ", ".join("%d@127.0.0.1:%d" % (nd.id, nd.port)
                          for nd in self.nodes)
        certs = os.path.join(workdir, "certs")
        for nd in self.nodes:
            with open(nd.conf, "w") as f:
                f.write(
                    "[node]\nid = %d\ndata_dir = %s\n"
                    "[cluster]\nlisten = 127.0.0.1:%d\npeers = %s\n"
                    "data_groups = %d\nreplication_factor = %d\n"
                    "[tls]\nmode = mutual\nca = %s/ca.pem\n"
                    "cert = %s/node%d.pem\nkey = %s/node%d.key\n"
                    "[control]\nsocket = %s\nsocket_mode = 0600\n"
                    "[admin]\nlisten = off\n[log]\nlevel = %s\n%s" %
                    (nd.id, nd.data, nd.port, peers, data_groups, min(3, n),
                     certs, certs, nd.id, certs, nd.id, nd.sock, log_level,
                     extra_conf))
            open(nd.slow, "w").close()
        self.shim = os.path.join(build, "jepsen/slowfs.so")
        _LIVE.add(self)

    def node(self, i):
        return self.nodes[i - 1]

    # --- processes --------------------------------------------------------

    @_locked
    def start(self, i):
        nd = self.node(i)
        assert nd.proc is None
        env = dict(os.environ)
        env["LD_PRELOAD"] = self.shim
        env["RD_JEPSEN_SLOW_FILE"] = nd.slow
        env["RD_JEPSEN_SLOW_COUNT"] = nd.slow_count
        # An ASan build wants its runtime first in the library list; the
        # shim only interposes libc's sync calls, so let it go second.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":verify_asan_link_order=0").lstrip(":")
        with open(nd.log, "ab") as log:
            log.write(b"=== jepsen: start node %d at %.3f\n" %
                      (i, time.monotonic()))
            log.flush()
            nd.proc = subprocess.Popen(
                [os.path.join(self.build, "raftd"), "--config", nd.conf],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True)
        nd.paused = False

    def start_all(self):
        for nd in self.nodes:
            self.start(nd.id)

    def running(self, i):
        nd = self.node(i)
        return nd.proc is not None and nd.proc.poll() is None

    @_locked
    def reap(self, t):
        """Notice nodes that exited by themselves (an abort, an assertion):
        record them, so the verdict names them."""
        for nd in self.nodes:
            if nd.leaving:
                continue  # the nemesis reaps it (wait_removed)
            if nd.proc is not None and nd.proc.poll() is not None:
                rc = nd.proc.returncode
                nd.deaths.append((t, "exited %s" % (
                    "by signal %d" % -rc if rc < 0 else "with status %d" % rc)))
                with open(nd.log, "ab") as log:
                    log.write(b"=== jepsen: node %d exited rc=%d\n" %
                              (nd.id, rc))
                nd.proc = None
                nd.paused = False

    @_locked
    def kill(self, i, sig=signal.SIGKILL):
        nd = self.node(i)
        if nd.proc is None:
            return
        if nd.paused:
            os.kill(nd.proc.pid, signal.SIGCONT)
        nd.proc.send_signal(sig)
        try:
            nd.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            nd.proc.kill()
            nd.proc.wait()
        nd.proc = None
        nd.paused = False

    @_locked
    def pause(self, i):
        nd = self.node(i)
        if nd.proc is not None and not nd.paused:
            os.kill(nd.proc.pid, signal.SIGSTOP)
            nd.paused = True

    @_locked
    def resume(self, i):
        nd = self.node(i)
        if nd.proc is not None and nd.paused:
            os.kill(nd.proc.pid, signal.SIGCONT)
            nd.paused = False

    @_locked
    def wipe(self, i):
        """Delete node i's data directory (it must be stopped): a lost disk."""
        nd = self.node(i)
        assert nd.proc is None
        shutil.rmtree(nd.data)
        nd.wiped += 1

    def remove(self, i, via):
        """`raftctl members remove i` through node `via`: a decommission
        (node i's data replicas move to the others, then it leaves group 0
        and exits 0). The raftctl exit status and its output."""
        self.node(i).leaving = True
        r = subprocess.run(
            [os.path.join(self.build, "raftctl"), "-s", self.node(via).sock,
             "--timeout", "20000", "members", "remove", str(i)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=40)
        return r.returncode, r.stdout.decode(errors="replace").strip()

    def wait_removed(self, i, secs):
        """The exit status of removed node i once it exits by itself
        (None after `secs`: it is then killed, and the fault fails)."""
        nd = self.node(i)
        try:
            rc = nd.proc.wait(timeout=secs)
        except subprocess.TimeoutExpired:
            rc = None
        with self.lock:
            if rc is None:
                nd.proc.kill()
                nd.proc.wait()
            with open(nd.log, "ab") as log:
                log.write(b"=== jepsen: node %d removed, exit %s\n" %
                          (i, str(rc).encode()))
            nd.proc = None
            nd.paused = False
            nd.leaving = False
        return rc

    def rejoin_config(self, i):
        """Node i's config joins the running cluster through the others'
        addresses ([cluster] join) instead of founding it (peers)."""
        nd = self.node(i)
        addrs = ", ".join("127.0.0.1:%d" % o.port for o in self.nodes
                          if o.id != i)
        with open(nd.conf) as f:
            lines = f.read().split("\n")
        lines = ["join = %s" % addrs if ln.startswith(("peers = ", "join = "))
                 else ln for ln in lines]
        with open(nd.conf, "w") as f:
            f.write("\n".join(lines))

    def wait_node_ready(self, i, secs):
        """True once node i answers ready, False after `secs`."""
        def ready(c):
            return c.call("ready", deadline_ms=1000)["error"] == "OK"
        return self._poll(i, secs, ready)

    def _poll(self, i, secs, ok):
        """True once ok(client of node i) holds, polled every 0.2 s while
        node i runs; False after `secs` or once it stops."""
        end = time.monotonic() + secs
        c = Client(self.node(i).sock, timeout=2)
        try:
            while time.monotonic() < end:
                if not self.running(i):
                    return False
                if ok(c):
                    return True
                time.sleep(0.2)
            return False
        finally:
            c.close()

    def group_views(self):
        """{node: its raftctl groups rows, or None} from every node."""
        out = {}
        for nd in self.nodes:
            rows = None
            if self.running(nd.id) and not nd.paused:
                c = Client(nd.sock, timeout=2)
                r = c.call("groups", deadline_ms=1000)
                c.close()
                if r["error"] == "OK" and "groups" in r:
                    rows = r["groups"]
            out[nd.id] = rows
        return out

    def wait_replicated(self, secs):
        """[] once the whole cluster is fully replicated (replication_gaps
        from every node's view, then again with every voter's applied
        index at least what its group's leader had committed when the
        configurations were first complete); the gaps left after `secs`
        otherwise."""
        rf = min(3, self.n)
        end = time.monotonic() + secs
        floor = None
        while True:
            views = self.group_views()
            gaps = replication_gaps(views, rf, self.data_groups + 1, floor)
            if not gaps:
                if floor is not None:
                    return []
                floor = leader_commits(views)
                continue
            if time.monotonic() > end:
                return gaps
            time.sleep(0.2)

    def leader_claims(self):
        """{(group, term): {leader: [node whose log says so]}} from every
        node's "leader elected"/"leader changed" log lines."""
        return leader_claims({nd.id: nd.log for nd in self.nodes})

    def set_slow(self, i, ms):
        with open(self.node(i).slow, "w") as f:
            f.write("%d\n" % ms)

    def slowed(self, i):
        """How many syncs of node i the shim has delayed so far."""
        try:
            return os.path.getsize(self.node(i).slow_count)
        except OSError:
            return 0

    @_locked
    def stop_all(self, timeout=30):
        """Graceful stop (SIGTERM); returns {node: exit status}."""
        out = {}
        for nd in self.nodes:
            self.resume(nd.id)
            if nd.proc is not None:
                nd.proc.send_signal(signal.SIGTERM)
        for nd in self.nodes:
            if nd.proc is None:
                continue
            try:
                out[nd.id] = nd.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                nd.proc.kill()
                out[nd.id] = "no exit %ds after SIGTERM" % timeout
                nd.proc.wait()
            nd.proc = None
        return out

    def client(self, i, **kw):
        return Client(self.node(i).sock, **kw)

    def wait_ready(self, secs):
        end = time.monotonic() + secs
        for nd in self.nodes:
            if nd.proc is None:
                continue
            c = Client(nd.sock, timeout=2)
            while True:
                r = c.call("ready", deadline_ms=1000)
                if r["error"] == "OK":
                    break
                if time.monotonic() > end:
                    c.close()
                    return False
                time.sleep(0.1)
            c.close()
        return True

    # --- network -----------------------------------------------------------

    def _nft(self, script):
        subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True,
                       stdout=subprocess.DEVNULL)

    def net_init(self):
        self._nft("table inet %s {\n chain input {\n"
                  "  type filter hook input priority -10; policy accept;\n"
                  " }\n}\n" % self.table)
        self.nft_ready = True

    def partition(self, pairs):
        """Drop every datagram from node a to node b for (a, b) in pairs
        (directed); replaces the previous rules."""
        rules = ["flush chain inet %s input" % self.table]
        for a, b in sorted(pairs):
            rules.append(
                "add rule inet %s input ip saddr 127.0.0.1 ip daddr 127.0.0.1 "
                "udp sport %d udp dport %d counter drop" %
                (self.table, self.node(a).port, self.node(b).port))
        self._nft("\n".join(rules) + "\n")
        self.cut = set(pairs)

    def dropped(self):
        """Datagrams the current partition rules have dropped so far."""
        if not self.nft_ready or not self.cut:
            return 0
        out = subprocess.run(["nft", "list", "chain", "inet", self.table,
                              "input"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode()
        return sum(int(w.split()[0]) for w in
                   out.split("counter packets ")[1:] if w.split())

    def heal_net(self):
        """Remove every partition rule; returns the datagrams they dropped."""
        n = self.dropped()
        if self.nft_ready:
            self._nft("flush chain inet %s input\n" % self.table)
        self.cut = set()
        return n

    @_locked
    def close(self):
        """Kill every node and delete the table; safe to call twice."""
        for nd in self.nodes:
            try:
                if nd.proc is not None:
                    if nd.paused:
                        os.kill(nd.proc.pid, signal.SIGCONT)
                    nd.proc.kill()
                    nd.proc.wait()
                    nd.proc = None
            except OSError:
                pass
        if self.nft_ready:
            subprocess.run(["nft", "delete", "table", "inet", self.table],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.nft_ready = False
        _LIVE.discard(self)
