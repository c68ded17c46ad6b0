#!/usr/bin/env python3
"""raftd's Jepsen-style suite: real raftd processes on loopback, concurrent
clients on each node's Unix socket, faults on a seeded schedule, and a
linearizability check of everything the clients saw.

  python3 tests/jepsen/jepsen.py [--runs N] [--seconds S] [--nemesis SPEC]
                                 [--seed S] [--nodes 3|5] [--workload W]

(make jepsen passes JEPSEN_RUNS, JEPSEN_SECONDS, JEPSEN_NEMESIS, JEPSEN_SEED,
JEPSEN_NODES, JEPSEN_WORKLOAD). One run:
  1. configs, certificates and an nftables table for N nodes; start them
     and wait until every node is ready;
  2. clients (tests/jepsen/workloads.py) for the run's length while the
     nemesis (tests/jepsen/nemesis.py) plays its schedule;
  3. heal: faults undone, crashed nodes restarted, every node ready again;
  4. every node reads every key linearizably (the reads join the history);
  5. every node's state-machine hash (raftctl status) must agree once the
     nodes have applied the same entries;
  6. checks: linearizability per key (tests/jepsen/checker.py), every
     node answered (4: a key it could not read is "unavailable at the
     end", its own verdict, never taken for lost data), the list and
     counter checks on the final values read, no node exited on its own,
     the replicas converged (5), no group had two leaders in one term (the
     nodes' "leader elected"/"leader changed" log lines), and every node
     stops with status 0 on SIGTERM (tests/jepsen/README.md).
A run prints its seed, schedule, operations by outcome and verdict; a
failing run keeps its history, schedule, report and node logs under
OUT/run-<seed>/ (OUT: --out, default build/jepsen). The seed fixes the
schedule and every client's choices; timing on a real machine does not
replay exactly, so a replay (--seed) meets the same faults in the same
order, not necessarily the same interleaving.
"""

import argparse
import atexit
import collections
import gzip
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
import cluster as clustermod  # noqa: E402
import nemesis as nemesismod  # noqa: E402
import outcomes  # noqa: E402
import workloads  # noqa: E402


def say(*a):
    print(*a, flush=True)


def last_lines(path, n=12, match=None):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 256 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    if match is not None:
        lines = [ln for ln in lines if any(m in ln for m in match)]
    return lines[-n:]


def final_reads(c, hist, keys, secs):
    """Step 4: each node reads each key; a failed read is retried until
    `secs` pass (per node). Every read goes into the history under the proc
    checker.FINAL + "n<node>", where the checker finds the final values
    and the keys nobody could read (checker.final_state)."""
    for nd in c.nodes:
        cl = c.client(nd.id, timeout=4.0, deadline_ms=2500)
        proc = "%sn%d" % (checker.FINAL, nd.id)
        end = time.monotonic() + secs
        for key in keys:
            while True:
                o = workloads.invoke(hist, cl, proc, nd.id, "get", key)
                if o["outcome"] == outcomes.OK or time.monotonic() > end:
                    break
                time.sleep(0.2)
        cl.close()


def key_groups(c, keys):
    """{key: data group} as the first node that answers routes it ({} when
    none does): names the group of a key nobody could read."""
    for nd in c.nodes:
        cl = c.client(nd.id, timeout=3.0)
        gr = cl.call("groups")
        cl.close()
        if "groups" in gr:
            route = {v: g["group"] for g in gr["groups"] for v in g["vshards"]}
            return {k: route.get(vshard(k)) for k in keys}
    return {}


def vshard(key):
    """The key's vShard: FNV-1a 64 of its bytes modulo 1024, as
    lib/storage/kv.c computes it."""
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % 1024


def _snapshot(c):
    """{node: (state hash, {group: (applied, commit)}, {vshard: group})}
    from every node's status and groups (None for a node that fails)."""
    seen = {}
    for nd in c.nodes:
        cl = c.client(nd.id, timeout=3.0)
        st = cl.call("status")
        gr = cl.call("groups")
        cl.close()
        if "status" not in st or "groups" not in gr:
            seen[nd.id] = None
            continue
        groups = {g["group"]: (g["applied"], g["commit"]) for g in gr["groups"]}
        route = {v: g["group"] for g in gr["groups"] for v in g["vshards"]}
        seen[nd.id] = (st["status"]["state_machine_hash"], groups, route)
    return seen


def _diverged(c, keys):
    """Replicas that disagree, or [] once they agree:
      - every replica of a group has applied its commit index, and all
        replicas report the same commit index;
      - nodes that host the same groups report the same state-machine hash
        (the hash covers every group a node hosts: with 3 nodes and 3
        replicas, every node);
      - every replica of each key's group holds the same value for it (a
        stale read: the replica's own state machine). Not compared with
        the final reads: a write whose outcome was unknown may still
        commit after them, which linearizability allows."""
    seen = _snapshot(c)
    out = []
    for i, v in sorted(seen.items()):
        if v is None:
            out.append("n%d answers no status or groups" % i)
    if out:
        return out
    commits = {}
    for i, (_, groups, _) in seen.items():
        for g, (applied, commit) in groups.items():
            if applied != commit:
                out.append("n%d group %d applied %d of commit %d" % (
                    i, g, applied, commit))
            commits.setdefault(g, set()).add(commit)
    for g, cs in sorted(commits.items()):
        if len(cs) > 1:
            out.append("group %d: replicas at commit %s" % (g, sorted(cs)))
    by_set = {}
    for i, (h, groups, _) in seen.items():
        by_set.setdefault(tuple(sorted(groups)), {})[i] = h
    for gs, hs in sorted(by_set.items()):
        if len(set(hs.values())) > 1:
            out.append("nodes hosting groups %s: state hashes %s" % (
                list(gs), ", ".join("n%d %016x" % kv for kv in
                                    sorted(hs.items()))))
    if out:
        return out
    route = next(iter(seen.values()))[2]
    for key in keys:
        g = route.get(vshard(key))
        held = {}
        for i, (_, groups, _) in sorted(seen.items()):
            if g not in groups:
                continue
            cl = c.client(i, timeout=3.0)
            r = cl.call("get", key=key.encode(), stale=True)
            cl.close()
            if r["error"] != "OK" or "value" not in r:
                out.append("n%d: stale read of %s: %s" % (i, key, r["error"]))
                continue
            held[i] = r["value"]["value"].decode() if r["value"]["found"] \
                else None
        if len(set(held.values())) > 1:
            out.append("group %d replicas disagree on %s: %s" % (
                g, key, ", ".join("n%d %r" % kv for kv in sorted(held.items()))))
    return out


def converge(c, keys, secs):
    """Step 5: wait until the replicas agree (_diverged). Returns
    [problems]."""
    end = time.monotonic() + secs
    while True:
        out = _diverged(c, keys)
        if not out:
            return []
        if time.monotonic() > end:
            return ["replicas did not converge in %ds:\n  %s\n  %s" % (
                secs, "\n  ".join(out), "\n  ".join(groups_table(c)))]
        time.sleep(0.5)


def groups_table(c):
    """Every node's raftctl groups rows, one line each, for a report."""
    out = ["groups as each node sees them (role, term, leader, commit, "
           "applied, last index, voters, learners):"]
    for i, rows in sorted(c.group_views().items()):
        if rows is None:
            out.append("  n%d: no answer" % i)
        for r in rows or []:
            out.append("  n%d g%d %s term %d leader %d commit %d applied %d "
                       "last %d voters %s learners %s" % (
                           i, r["group"], r["role"], r["term"], r["leader"],
                           r["commit"], r["applied"], r["last_index"],
                           r["voters"], r["learners"]))
    return out


def run_one(args, seed, idx):
    asked = nemesismod.parse(args.nemesis)
    kinds = nemesismod.for_nodes(asked, args.nodes)
    if kinds != asked:
        print("  nemesis: %s left out: needs more than %d nodes" % (
            ", ".join(k for k in asked if k not in kinds), args.nodes))
    sched = nemesismod.schedule(seed, args.seconds, kinds)
    wl = list(workloads.WORKLOADS) if args.workload == "all" else [args.workload]
    workdir = tempfile.mkdtemp(prefix="rd-jepsen-")
    WORKDIRS.append(workdir)
    lines = []

    def log(text):
        lines.append(text)
        say("  " + text)

    say("jepsen run %d/%d seed=%d nodes=%d seconds=%g nemesis=%s workload=%s "
        "clients=%d" % (idx + 1, args.runs, seed, args.nodes, args.seconds,
                        args.nemesis, args.workload, args.clients))
    say("  replay: make jepsen JEPSEN_SEED=%d JEPSEN_SECONDS=%g "
        "JEPSEN_NEMESIS=%s JEPSEN_NODES=%d JEPSEN_WORKLOAD=%s%s" % (
            seed, args.seconds, args.nemesis, args.nodes, args.workload,
            " JEPSEN_SNAPSHOT_ENTRIES=%d" % args.snapshot_entries
            if args.snapshot_entries else ""))
    say("  schedule: %s" % ("; ".join("%.2fs %s %.2fs" % (t, k, d)
                                      for t, k, d, _ in sched) or "none"))
    extra = args.extra_conf
    if args.snapshot_entries:
        extra = "[raft]\nsnapshot_entries = %d\n%s" % (args.snapshot_entries,
                                                        extra)
    c = clustermod.Cluster(args.nodes, args.build, args.src, workdir,
                           "%d" % idx, data_groups=args.groups,
                           log_level=args.log_level, extra_conf=extra)
    problems = []
    hist = None
    nem = None
    group_of = {}
    allkeys = []
    try:
        c.net_init()
        c.start_all()
        if not c.wait_ready(args.ready_timeout):
            c.reap(0)
            problems.append("cluster not ready %ds after start" %
                            args.ready_timeout)
            raise _Abort()
        t_start = time.monotonic_ns()
        hist = workloads.History(t_start)
        stop = threading.Event()
        keys = {w: workloads.keys_for(w, args.keys) for w in wl}
        workers = []
        for k in range(args.clients):
            w = wl[k % len(wl)]
            workers.append(workloads.Worker(
                k, w, c, k % args.nodes + 1, hist, keys[w], seed, stop,
                args.clients, stale=args.stale_reads,
                think_ms=args.think_ms))
        nem = nemesismod.Nemesis(c, seed, log)
        nt = threading.Thread(target=nem.run,
                              args=(sched, t_start / 1e9, stop), daemon=True)
        for w in workers:
            w.start()
        nt.start()
        end = t_start / 1e9 + args.seconds
        while time.monotonic() < end:
            time.sleep(0.2)
            c.reap(hist.now())
        stop.set()
        nt.join()
        if nem.error:
            problems.append(nem.error)
        for w in workers:
            w.join(30)
        # 3. heal
        nem.heal()
        c.heal_net()
        c.reap(hist.now())
        for nd in c.nodes:
            c.resume(nd.id)
            c.set_slow(nd.id, 0)
            if not c.running(nd.id):
                c.start(nd.id)
        if not c.wait_ready(args.ready_timeout):
            problems.append("not every node ready %ds after healing" %
                            args.ready_timeout)
        # 4, 5
        allkeys = [k for w in wl for k in keys[w]]
        final_reads(c, hist, allkeys, args.ready_timeout)
        group_of = key_groups(c, allkeys)
        problems += converge(c, allkeys, args.ready_timeout)
        c.reap(hist.now())
    except _Abort:
        pass
    finally:
        if hist is not None:
            stopped = c.stop_all()
        else:
            stopped = {}
        c.close()

    # 6. checks
    report = []
    for nd in c.nodes:
        for t, what in nd.deaths:
            dur = nem.during(t / 1e9) if nem else ""
            problems.append("n%d %s at %.2fs%s; its log ends:\n    %s" % (
                nd.id, what, t / 1e9, " (during %s)" % dur if dur else "",
                "\n    ".join(
                    last_lines(nd.log, 3, ["Assertion", "runtime error",
                                           "Sanitizer", "<0>", "<1>", "<2>",
                                           "<3>"]) or
                    last_lines(nd.log, 3))))
    # Election Safety, from every node's log (also across a wiped node's
    # incarnations: its log file outlives its data directory).
    problems += clustermod.two_leaders(c.leader_claims())
    for i, st in sorted(stopped.items()):
        if st != 0:
            problems.append("n%d: SIGTERM ended it with %s" % (i, st))
    counts = collections.Counter()
    by_f = collections.Counter()
    if hist is not None:
        for op in hist.ops:
            counts[op["outcome"]] += 1
            by_f["%s:%s" % (op["f"], op["error"])] += 1
        t0 = time.monotonic()
        results = checker.check_history(hist.ops, max_steps=args.max_steps)
        bad = [r for r in results if not r.ok]
        for r in bad:
            problems.append(r.report())
        problems += checker.check_workloads(hist.ops, hist.appends,
                                            hist.incrs, allkeys, group_of)
        if counts["ok"] == 0:
            problems.append("no operation succeeded")
        report.append("checked %d keys in %.1fs" % (len(results),
                                                    time.monotonic() - t0))
    say("  ops: %d (ok %d, fail %d, unknown %d); faults %d (partitions "
        "dropped %d datagrams, slow disks delayed %d syncs)" % (
            sum(counts.values()), counts["ok"], counts["fail"],
            counts["unknown"], nem.faults if nem else 0,
            nem.dropped if nem else 0, nem.slowed if nem else 0))
    if hist is not None:
        ap = collections.Counter(a["outcome"] for a in hist.appends)
        ic = collections.Counter(a["outcome"] for a in hist.incrs)
        say("  appends ok/fail/unknown %d/%d/%d; increments %d/%d/%d" % (
            ap["ok"], ap["fail"], ap["unknown"], ic["ok"], ic["fail"],
            ic["unknown"]))
        say("  by answer: " + ", ".join("%s %d" % kv for kv in
                                         sorted(by_f.items())))
    for r in report:
        say("  " + r)
    say("  verdict: %s" % checker.verdict(problems))
    for p in problems:
        say("    " + p.replace("\n", "\n    "))
    if problems or args.keep:
        keep = os.path.join(args.out, "run-%d" % seed)
        shutil.rmtree(keep, ignore_errors=True)
        os.makedirs(keep)
        for nd in c.nodes:
            if os.path.exists(nd.log):
                shutil.copy(nd.log, keep)
        with gzip.open(os.path.join(keep, "history.jsonl.gz"), "wt") as f:
            for op in (hist.ops if hist else []):
                f.write(json.dumps(op) + "\n")
        with open(os.path.join(keep, "report.txt"), "w") as f:
            f.write("seed %d\nschedule:\n%s\nproblems:\n%s\n" % (
                seed, "\n".join(lines), "\n\n".join(problems)))
        say("  kept: %s" % keep)
    shutil.rmtree(workdir, ignore_errors=True)
    return {"ok": not problems, "ops": sum(counts.values()),
            "unknown": counts["unknown"], "faults": nem.faults if nem else 0,
            "seed": seed}


class _Abort(Exception):
    pass


WORKDIRS = []  # run directories, removed however the suite ends


def main():
    def env(name, default=None):
        return os.environ.get(name) or default  # empty (make export): unset
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(env("JEPSEN_RUNS", "1")))
    ap.add_argument("--seconds", type=float,
                    default=float(env("JEPSEN_SECONDS", "30")))
    ap.add_argument("--nemesis", default=env("JEPSEN_NEMESIS", "mixed"))
    ap.add_argument("--seed", type=int, default=(
        int(env("JEPSEN_SEED")) if env("JEPSEN_SEED") else None))
    ap.add_argument("--nodes", type=int, default=int(env("JEPSEN_NODES", "3")))
    ap.add_argument("--workload", default=env("JEPSEN_WORKLOAD", "all"),
                    choices=("all",) + workloads.WORKLOADS)
    ap.add_argument("--clients", type=int,
                    default=int(env("JEPSEN_CLIENTS", "9")))
    ap.add_argument("--think-ms", type=float,
                    default=float(env("JEPSEN_THINK_MS", "2")),
                    help="mean pause of a client between operations")
    ap.add_argument("--keys", type=int, default=int(env("JEPSEN_KEYS", "6")),
                    help="keys per workload")
    ap.add_argument("--groups", type=int, default=4, help="data groups")
    ap.add_argument("--snapshot-entries", type=int,
                    default=int(env("JEPSEN_SNAPSHOT_ENTRIES", "500")),
                    help="[raft] snapshot_entries of every node, low so that "
                    "runs install snapshots (0: the "
                    "node's default)")
    ap.add_argument("--stale-reads", action="store_true",
                    help="register reads with stale=true: a check of the "
                    "suite itself (expect the checker to fail such runs "
                    "under partitions)")
    ap.add_argument("--build", default=env("RD_BUILD", "build"))
    ap.add_argument("--src", default=env("RD_SRC", "."))
    ap.add_argument("--out", default=None)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--keep", action="store_true",
                    default=bool(env("JEPSEN_KEEP")),
                    help="keep history and logs of passing runs too")
    ap.add_argument("--extra-conf", default=env("JEPSEN_EXTRA_CONF", ""))
    ap.add_argument("--ready-timeout", type=int, default=60)
    ap.add_argument("--max-steps", type=int, default=5_000_000)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.src = os.path.abspath(args.src)
    args.out = os.path.abspath(args.out or os.path.join(args.build, "jepsen"))
    if args.nodes not in (3, 5):
        ap.error("--nodes must be 3 or 5")
    try:
        nemesismod.parse(args.nemesis)
    except ValueError as e:
        ap.error(str(e))
    atexit.register(clustermod.close_all)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    # Also SIGINT: a shell that starts the suite in the background leaves
    # SIGINT ignored, and Python then installs no handler of its own.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.seed is not None:
        seeds = [args.seed + i for i in range(args.runs)]
    else:
        base = random.SystemRandom().randrange(1, 1 << 31)
        seeds = [base + i for i in range(args.runs)]
    results = []
    try:
        for i, s in enumerate(seeds):
            results.append(run_one(args, s, i))
    except KeyboardInterrupt:
        say("jepsen: interrupted; cleaning up")
        clustermod.close_all()
        return 130
    finally:
        clustermod.close_all()
        for d in WORKDIRS:
            shutil.rmtree(d, ignore_errors=True)
    failed = [r for r in results if not r["ok"]]
    say("jepsen: %d runs, %d failed%s; %d operations, %d unknown, %d faults" % (
        len(results), len(failed),
        " (seeds %s)" % " ".join(str(r["seed"]) for r in failed)
        if failed else "", sum(r["ops"] for r in results),
        sum(r["unknown"] for r in results), sum(r["faults"] for r in results)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
