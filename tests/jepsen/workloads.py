"""Client workers and the history they record.

Three workloads, each over its own keys (a run uses all three unless
JEPSEN_WORKLOAD names one):
  register  put / get / cas / delete on keys reg-0..; every written value
            is unique ("w<worker>.<n>"), which the checker relies on
  append    an append-only list per key (list-0..): read, then cas from
            the value read to the value plus one new, unique element;
            CAS_FAILED retries with the value it returned
  counter   increments by cas on keys ctr-0..: the value is "<count> <tag>"
            with a unique tag, so that every written value is unique

Every primitive operation goes into the history (checked as a register
per key by tests/jepsen/checker.py); appends and increments are also
recorded as logical operations with their outcome, for the list and
counter checks. A worker talks to one node over one connection, one
request at a time. After an unknown outcome it continues as a new Jepsen
process id (the old one may still have an operation in flight).
"""

import random
import threading
import time

import outcomes

WORKLOADS = ("register", "append", "counter")


class History:
    def __init__(self, t_start):
        self.t_start = t_start
        self.ops = []
        self.appends = []
        self.incrs = []
        self.lock = threading.Lock()

    def now(self):
        return time.monotonic_ns() - self.t_start

    def add(self, op):
        with self.lock:
            op["id"] = len(self.ops)
            self.ops.append(op)


def _s(b):
    return b.decode("utf-8", "replace")


def invoke(hist, client, proc, node, f, key, value=None, expected=None,
           absent=False, timeout=None, stale=False):
    """Run one primitive operation and record it."""
    op = {"proc": proc, "node": node, "f": f, "key": key, "t0": hist.now()}
    kw = {"key": key.encode()}
    if stale:
        op["stale"] = kw["stale"] = True
    if f in ("put", "cas"):
        op["value"] = value
        kw["value"] = value.encode()
    if f == "cas":
        op["absent"] = absent
        if absent:
            kw["expected_absent"] = True
        else:
            op["expected"] = expected
            kw["expected"] = expected.encode()
    r = client.call(f, timeout=timeout, **kw)
    t1 = hist.now()
    op["error"] = r["error"]
    op["outcome"] = outcomes.classify(r["error"])
    if r["error"] != "OK" and r.get("message"):
        op["message"] = r["message"]
    if op["outcome"] == outcomes.UNKNOWN:
        op["t1"] = None  # may take effect at any time from t0 on
        op["t_seen"] = t1
    else:
        op["t1"] = t1
    if "value" in r and (f == "get" or r["error"] == "CAS_FAILED"):
        v = r["value"]
        op["result"] = _s(v["value"]) if v["found"] else None
    elif f == "get" and op["outcome"] == outcomes.OK:
        op["result"] = None
    hist.add(op)
    return op


class Worker(threading.Thread):
    def __init__(self, k, workload, cluster, node, hist, keys, seed, stop,
                 nworkers, stale=False, think_ms=0):
        super().__init__(daemon=True, name="worker-%d" % k)
        self.k, self.workload, self.node = k, workload, node
        self.cluster, self.hist, self.keys, self.stop = cluster, hist, keys, stop
        self.rng = random.Random(seed * 1000003 + k)
        self.proc, self.nworkers = k, nworkers
        self.n = 0
        self.client = cluster.client(node, timeout=4.0, deadline_ms=2500)
        self.last = {}  # key -> last value this worker saw
        self.stale = stale
        self.think = think_ms / 1000.0

    def uniq(self):
        self.n += 1
        return "w%d.%d" % (self.k, self.n)

    def op(self, f, key, **kw):
        o = invoke(self.hist, self.client, self.proc, self.node, f, key, **kw)
        if o["outcome"] == outcomes.UNKNOWN:
            self.proc += self.nworkers
            if o["error"] in ("CLIENT_TIMEOUT", "DISCONNECTED"):
                time.sleep(0.05)
        elif o["outcome"] == outcomes.FAIL and o["error"] != "CAS_FAILED":
            time.sleep(0.05)  # e.g. NOT_READY, not sent: the node is down
        if "result" in o:
            self.last[key] = o["result"]
        elif o["outcome"] == outcomes.OK and f in ("put", "cas"):
            self.last[key] = o["value"]
        elif o["outcome"] == outcomes.OK and f == "delete":
            self.last[key] = None
        return o

    def register(self):
        key = self.rng.choice(self.keys)
        r = self.rng.random()
        if r < 0.4:
            self.op("get", key, stale=self.stale)
        elif r < 0.7:
            self.op("put", key, value=self.uniq())
        elif r < 0.95:
            cur = self.last.get(key)
            self.op("cas", key, value=self.uniq(), expected=cur,
                    absent=cur is None)
        else:
            self.op("delete", key)

    def read_modify(self, key, make):
        """get, then cas from what was read to make(read); CAS_FAILED
        retries from the value it returned, 4 tries. Returns the outcome
        class of the whole update."""
        o = self.op("get", key)
        if o["outcome"] != outcomes.OK:
            return outcomes.FAIL
        cur = o["result"]
        for _ in range(4):
            o = self.op("cas", key, value=make(cur), expected=cur,
                        absent=cur is None)
            if o["outcome"] == outcomes.OK:
                return outcomes.OK
            if o["error"] != "CAS_FAILED":
                return o["outcome"]
            cur = o["result"]
        return outcomes.FAIL

    def key_or_read(self, p_read):
        """A random key to update, or None after reading it instead (with
        probability p_read)."""
        key = self.rng.choice(self.keys)
        if self.rng.random() < p_read:
            self.op("get", key)
            return None
        return key

    def append(self):
        key = self.key_or_read(0.25)
        if key is None:
            return
        elem = self.uniq()
        out = self.read_modify(
            key, lambda cur: elem if cur is None else cur + " " + elem)
        with self.hist.lock:
            self.hist.appends.append({"key": key, "elem": elem,
                                      "outcome": out})

    def counter(self):
        key = self.key_or_read(0.2)
        if key is None:
            return
        tag = self.uniq()

        def make(cur):
            n = 0 if cur is None else int(cur.split(" ")[0])
            return "%d %s" % (n + 1, tag)
        out = self.read_modify(key, make)
        with self.hist.lock:
            self.hist.incrs.append({"key": key, "outcome": out})

    def run(self):
        body = getattr(self, self.workload)
        try:
            while not self.stop.is_set():
                body()
                if self.think:
                    time.sleep(self.rng.uniform(0, 2 * self.think))
        finally:
            self.client.close()


def keys_for(workload, n):
    prefix = {"register": "reg", "append": "list", "counter": "ctr"}[workload]
    return ["%s-%d" % (prefix, i) for i in range(n)]
