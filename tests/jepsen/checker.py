"""Linearizability checker for the suite's histories.

The model is one register per key (put, get, delete, cas), and the history
is checked key by key: linearizability is compositional (Herlihy & Wing
1990, "locality"), so a history is linearizable iff every key's
sub-history is. Each key is checked with the Wing-Gong-Lowe search (Lowe,
"Testing for linearizability", 2017: just-in-time linearization with a
cache of (linearized set, state) configurations already explored).

An operation is a dict (tests/jepsen/workloads.py writes them):
  f        "put" | "get" | "delete" | "cas"
  key      the key
  value    put/cas: the value written (unique per write: see prune())
  expected cas: the value required; absent: cas requires the key absent
  t0, t1   invocation and completion times (ns since the run started);
           t1 is None when the outcome is unknown
  outcome  "ok" | "fail" | "unknown" (tests/jepsen/outcomes.py)
  error    the answer's error name
  result   get, and cas answered CAS_FAILED: the value seen (None = absent)

What each operation means to the checker:
  ok get / put / delete / cas   took effect once, between t0 and t1
  CAS_FAILED                    took effect between t0 and t1 as a no-op
                                that saw `result` (not the expected value)
  unknown put / delete / cas    took effect once at any time after t0, or
                                never (its completion is at infinity and
                                linearizing it is optional)
  other failures, unknown gets  no effect, no observation: dropped
"""

INF = float("inf")


def _cond(state, op):
    return state is None if op.get("absent") else state == op.get("expected")


def step(state, op):
    """(allowed, next state) of the register model for one operation."""
    f = op["f"]
    if f == "put":
        return True, op["value"]
    if f == "delete":
        return True, None
    if f == "get":
        return state == op["result"], state
    if f == "cas":
        if op["outcome"] == "fail":  # CAS_FAILED: saw `result`
            return (not _cond(state, op)) and state == op["result"], state
        if _cond(state, op):
            return True, op["value"]
        return False, state
    raise ValueError("unknown f %r" % f)


def relevant(op):
    """Whether an operation constrains the history at all."""
    if op["outcome"] == "ok":
        return True
    if op["outcome"] == "fail":
        return op["f"] == "cas" and op.get("error") == "CAS_FAILED"
    return op["f"] in ("put", "delete", "cas")  # an unknown write


def prune(ops):
    """Drop unknown writes of a value nobody observed. Sound because every
    written value is unique: if such a write took effect, the next
    operation to observe the register must find another value, so a blind
    write (put or delete) overwrote it first, and the register's states
    seen by every observer are those of the history without it."""
    seen = set()
    for op in ops:
        if op["f"] == "get" and op["outcome"] == "ok":
            seen.add(op["result"])
        elif op["f"] == "cas" and op["outcome"] == "ok":
            seen.add(None if op.get("absent") else op.get("expected"))
        elif op["f"] == "cas" and op["outcome"] == "fail":
            seen.add(op["result"])
    return [op for op in ops
            if not (op["outcome"] == "unknown" and op["f"] in ("put", "cas")
                    and op["value"] not in seen)]


class Result:
    def __init__(self, key, ok, ops, blocked=None, states=None, steps=0,
                 gave_up=False):
        self.key, self.ok, self.ops = key, ok, ops
        self.blocked, self.states = blocked, states or set()
        self.steps, self.gave_up = steps, gave_up

    def window(self, before=4):
        """The failing window: the operation the search could not place
        (with the most other operations placed), every operation
        concurrent with it, and the last `before` that completed before it
        began."""
        if self.ok or self.blocked is None:
            return []
        b = self.blocked
        b1 = b["t1"] if b["t1"] is not None else INF
        conc = [op for op in self.ops if op["t0"] <= b1 and
                (op["t1"] is None or op["t1"] >= b["t0"])]
        prior = sorted((op for op in self.ops if op["t1"] is not None and
                        op["t1"] < b["t0"]), key=lambda o: o["t1"])[-before:]
        return sorted(prior + conc, key=lambda o: (o["t0"], o.get("id", 0)))

    def report(self):
        if self.ok:
            return "key %s: linearizable (%d ops, %d steps)" % (
                self.key, len(self.ops), self.steps)
        if self.gave_up:
            return "key %s: search gave up after %d steps (%d ops)" % (
                self.key, self.steps, len(self.ops))
        lines = ["key %s: NOT linearizable (%d ops); no order explains:" % (
            self.key, len(self.ops)), "  " + fmt_op(self.blocked, mark=True),
            "  the register could hold just before: %s" %
            ", ".join(sorted(repr(s) for s in self.states)),
            "  window (ops on %s around it, by invocation):" % self.key]
        for op in self.window():
            lines.append("    " + fmt_op(op, mark=op is self.blocked))
        return "\n".join(lines)


def fmt_op(op, mark=False):
    t1 = "    ?    " if op["t1"] is None else "%9.3f" % (op["t1"] / 1e9)
    f = op["f"]
    if f == "put":
        what = "put %r" % op["value"]
    elif f == "delete":
        what = "delete"
    elif f == "get":
        what = "get"
    else:
        what = "cas %s -> %r" % ("<absent>" if op.get("absent")
                                  else repr(op.get("expected")), op["value"])
    res = op["outcome"]
    if op["outcome"] != "ok" or f == "get":
        res = op.get("error", "")
    if f == "get" or op.get("error") == "CAS_FAILED":
        res += " saw %r" % (op.get("result"),)
    return "%s[%9.3f .. %s] p%s n%s %s: %s" % (
        ">> " if mark else "", op["t0"] / 1e9, t1, op.get("proc", "?"),
        op.get("node", "?"), what, res)


def check_key(key, ops, init=None, max_steps=5_000_000):
    """WGL search over one key's operations. `init` is the state before
    the first operation (None: absent)."""
    ops = prune([op for op in ops if relevant(op)])
    n = len(ops)
    evs = []
    for i, op in enumerate(ops):
        evs.append((op["t0"], 0, i))
        evs.append((INF if op["t1"] is None else op["t1"], 1, i))
    # At equal times a call sorts before a return: the two count as
    # concurrent (the lenient reading of ties).
    evs.sort()
    m = len(evs)
    END = m + 1
    nxt = list(range(1, m + 2)) + [END]
    prv = [0] + list(range(0, m + 1))
    is_call = [False] * (m + 2)
    opi = [0] * (m + 2)
    match = [0] * (m + 2)
    call_node = [0] * n
    for k, (_, kind, i) in enumerate(evs, start=1):
        opi[k] = i
        if kind == 0:
            is_call[k] = True
            call_node[i] = k
        else:
            match[call_node[i]] = k
    finite = [op["t1"] is not None for op in ops]
    known_left = sum(finite)

    def lift(c):
        r = match[c]
        nxt[prv[c]] = nxt[c]
        prv[nxt[c]] = prv[c]
        nxt[prv[r]] = nxt[r]
        prv[nxt[r]] = prv[r]

    def unlift(c):
        r = match[c]
        nxt[prv[r]] = r
        prv[nxt[r]] = r
        nxt[prv[c]] = c
        prv[nxt[c]] = c

    state, lin, stack, cache = init, 0, [], set()
    best_depth, best_op, best_states = -1, None, set()
    e, steps = nxt[0], 0
    while True:
        if known_left == 0:
            return Result(key, True, ops, steps=steps)
        steps += 1
        if steps > max_steps:
            return Result(key, False, ops, steps=steps, gave_up=True)
        if e != END and is_call[e]:
            i = opi[e]
            ok, s2 = step(state, ops[i])
            if ok:
                lin2 = lin | (1 << i)
                if (lin2, s2) not in cache:
                    cache.add((lin2, s2))
                    stack.append((e, state))
                    state, lin = s2, lin2
                    if finite[i]:
                        known_left -= 1
                    lift(e)
                    e = nxt[0]
                    continue
            e = nxt[e]
            continue
        # A completion (or the end) reached with its operation not placed:
        # this branch is impossible; back up.
        depth = len(stack)
        blocked = opi[e] if e != END else None
        if depth > best_depth:
            best_depth, best_op, best_states = depth, blocked, {state}
        elif depth == best_depth and blocked == best_op:
            best_states.add(state)
        if not stack:
            return Result(key, False, ops,
                          blocked=ops[best_op] if best_op is not None else None,
                          states=best_states, steps=steps)
        e, state = stack.pop()
        i = opi[e]
        lin &= ~(1 << i)
        if finite[i]:
            known_left += 1
        unlift(e)
        e = nxt[e]


def check_history(ops, max_steps=5_000_000):
    """Check every key; returns the list of per-key Results."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op["key"], []).append(op)
    return [check_key(k, v, max_steps=max_steps)
            for k, v in sorted(by_key.items())]


# --- workload-level checks ----------------------------------------------------

def parse_list(v):
    """A list-append value: elements separated by spaces (None: empty)."""
    return [] if v is None or v == "" else v.split(" ")


# The final reads (jepsen.py, after healing) are in the history too: gets
# whose proc is FINAL + "n<node>", retried until one answers OK or the time
# runs out. A key with no OK final read on any node has no known final value:
# its group was unavailable at the end. That is its own verdict
# (check_final), never read as an empty list or a zero counter: nothing
# says the acknowledged writes are gone, only that nobody could read them.
FINAL = "final-"
UNAVAILABLE = "unavailable at the end"


def final_state(ops):
    """(final, failed) from the history's final reads: final maps a key to
    the value of its latest OK final read (None: the key is absent); failed
    maps a key to {node: last answer} for the nodes whose final reads of it
    all failed. A key in neither had no final read."""
    final, last_t1, answered, failed = {}, {}, set(), {}
    for op in ops:
        if op["f"] != "get" or not str(op.get("proc", "")).startswith(FINAL):
            continue
        key, node = op["key"], op.get("node")
        if op["outcome"] == "ok":
            answered.add((key, node))
            if op["t1"] >= last_t1.get(key, -1):
                final[key], last_t1[key] = op.get("result"), op["t1"]
        else:
            what = op.get("error", "")
            if op.get("message"):
                what += " " + op["message"]
            failed.setdefault(key, {})[node] = what
    for key in list(failed):
        for node in [nd for nd in failed[key] if (key, nd) in answered]:
            del failed[key][node]
        if not failed[key]:
            del failed[key]
    return final, failed


def check_final(keys, final, failed, group_of=None):
    """Unavailability at the end, one problem per key: no node could read
    it ("final read of K failed"), or some node could not ("... failed on
    n2"). `group_of`: key -> its data group, named when known."""
    problems = []
    for key in sorted(set(keys) | set(failed)):
        bad = failed.get(key, {})
        if key in final and not bad:
            continue
        grp = ""
        if group_of and group_of.get(key) is not None:
            grp = " (group %d)" % group_of[key]
        why = "; ".join("n%s %s" % (nd, bad[nd].strip())
                        for nd in sorted(bad, key=str)) or "no final read"
        if key not in final:
            problems.append("%s: final read of %s failed%s: %s" % (
                UNAVAILABLE, key, grp, why))
        else:
            problems.append("%s: final read of %s failed on %s%s (other "
                            "nodes read it): %s" % (
                                UNAVAILABLE, key, ", ".join(
                                    "n%s" % nd for nd in sorted(bad, key=str)),
                                grp, why))
    return problems


def check_lists(ops, appends, final):
    """List-append checks (as Jepsen's list-append, for cas-built lists).
    `appends`: {"key", "elem", "outcome"} records; `final`: key -> the
    value read after healing (final_state: a key missing had no OK final
    read). Finds duplicated elements in any observed list, observed lists
    that are not a prefix of the final one (reordered or lost),
    acknowledged appends missing from the final list (lost) and elements
    whose append definitely failed (phantom). A key without a final value
    is checked against the longest list seen instead (every two lists seen
    must be prefixes of one another); loss and phantoms cannot be told for
    it (check_final reports it)."""
    problems = []
    observed = {}
    for op in ops:
        if op["outcome"] in ("ok", "fail") and "result" in op and (
                op["f"] == "get" and op["outcome"] == "ok" or
                op.get("error") == "CAS_FAILED"):
            observed.setdefault(op["key"], []).append((op, op["result"]))
    for key in sorted(set(list(observed) + list(final))):
        seen = observed.get(key, [])
        if key in final:
            ref, what = parse_list(final[key]), "the final %r" % (final[key],)
            if len(set(ref)) != len(ref):
                problems.append("list %s: duplicated element in the final "
                                "list %r" % (key, final[key]))
        else:
            longest = max((parse_list(v) for _, v in seen), key=len)
            ref = longest
            what = "the longest seen %r (no final read)" % " ".join(longest)
        for op, v in seen:
            lst = parse_list(v)
            if len(set(lst)) != len(lst):
                problems.append("list %s: duplicated element seen: %s" %
                                (key, fmt_op(op)))
            elif lst != ref[:len(lst)]:
                problems.append("list %s: seen list is not a prefix of %s: "
                                "%s" % (key, what, fmt_op(op)))
    for a in appends:
        if a["key"] not in final:
            continue
        fin = parse_list(final[a["key"]])
        if a["outcome"] == "ok" and a["elem"] not in fin:
            problems.append("list %s: acknowledged append %s lost (final %r)"
                            % (a["key"], a["elem"], final[a["key"]]))
        if a["outcome"] == "fail" and a["elem"] in fin:
            problems.append("list %s: failed append %s present (final %r)"
                            % (a["key"], a["elem"], final[a["key"]]))
    return problems


def counter_value(v):
    """A counter value: "<count> <tag>" (None, an absent key: 0)."""
    return 0 if v is None else int(v.split(" ")[0])


def check_counters(incrs, final):
    """Counter checks: the final value of each counter is at least the
    acknowledged increments and at most those plus the unknown ones. A
    key missing from `final` had no OK final read: its value is unknown,
    not 0, and it is left to check_final."""
    problems, per = [], {}
    for r in incrs:
        c = per.setdefault(r["key"], {"ok": 0, "unknown": 0, "fail": 0})
        c[r["outcome"]] += 1
    for key in sorted(set(per) | set(final)):
        if key not in final:
            continue
        c = per.get(key, {"ok": 0, "unknown": 0, "fail": 0})
        v = counter_value(final[key])
        if v < c["ok"]:
            problems.append("counter %s: final %d < %d acknowledged increments"
                            " (lost)" % (key, v, c["ok"]))
        elif v > c["ok"] + c["unknown"]:
            problems.append("counter %s: final %d > %d acknowledged + %d "
                            "unknown increments (duplicated)"
                            % (key, v, c["ok"], c["unknown"]))
    return problems


def check_workloads(ops, appends, incrs, keys, group_of=None):
    """The checks after the per-key linearizability search, from the
    history alone (final reads included): unavailability at the end
    (check_final), then the list and counter checks on the keys that were
    read. `keys`: every key the run used. Returns [problems]; those about
    unavailability begin with UNAVAILABLE."""
    final, failed = final_state(ops)
    problems = check_final(keys, final, failed, group_of)
    lists = [k for k in keys if k.startswith("list-")]
    ctrs = [k for k in keys if k.startswith("ctr-")]
    if lists:
        problems += check_lists(
            [o for o in ops if o["key"].startswith("list-")], appends,
            {k: v for k, v in final.items() if k.startswith("list-")})
    if ctrs:
        problems += check_counters(
            incrs, {k: v for k, v in final.items() if k.startswith("ctr-")})
    return problems


def verdict(problems):
    """PASS, or FAIL with the number of problems. A run whose only problems
    are unavailability at the end (check_final) says so, and that the
    checks found no lost, duplicated or reordered write in what could be
    read: such a run shows a group that stayed down, not one that lost
    data."""
    if not problems:
        return "PASS"
    unav = [p for p in problems if p.startswith(UNAVAILABLE)]
    if len(unav) == len(problems):
        return ("FAIL (%s: %d final read%s failed; no lost, duplicated or "
                "reordered write in what was read)" % (
                    UNAVAILABLE, len(unav), "" if len(unav) == 1 else "s"))
    return "FAIL (%d problems%s)" % (len(problems), "; %d %s" % (
        len(unav), UNAVAILABLE) if unav else "")
