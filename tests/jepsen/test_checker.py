"""Tests of the checker itself (tests/jepsen/checker.py): generated
linearizable histories pass; corrupted ones (a stale read, a lost write, a
duplicated append, a lost or duplicated increment) are caught, with the
failing window printed.

Run: python3 -m unittest -v test_checker (from tests/jepsen), or
make test-jepsen-checker.
"""

import random
import unittest

import checker

MS = 1_000_000


def gen_history(seed, procs=4, ops_per_proc=25, unknown_p=0.1, key="k"):
    """A random concurrent history of one register that is linearizable by
    construction: every operation takes effect at a point drawn inside its
    interval (an unknown write: at a point after its invocation, or
    never), and results are computed by applying the operations in the
    order of those points to a real register."""
    rng = random.Random(seed)
    ops, written, n = [], [None], 0
    for p in range(procs):
        t = rng.uniform(0, 5)
        for _ in range(ops_per_proc):
            t0 = t
            t1 = t0 + rng.uniform(0.5, 20)
            r = rng.random()
            op = {"id": len(ops), "proc": p, "node": 1, "key": key,
                  "t0": int(t0 * MS), "t1": int(t1 * MS)}
            if r < 0.35:
                op["f"] = "get"
            elif r < 0.65:
                n += 1
                op.update(f="put", value="v%d" % n)
            elif r < 0.7:
                op["f"] = "delete"
            else:
                n += 1
                op.update(f="cas", value="v%d" % n)
                exp = rng.choice(written[-3:])
                if exp is None:
                    op["absent"] = True
                else:
                    op["expected"] = exp
            op["lp"] = rng.uniform(t0, t1)
            op["outcome"], op["error"] = "ok", "OK"
            if op["f"] != "get" and rng.random() < unknown_p:
                op["outcome"], op["error"] = "unknown", "TIMEOUT"
                op["t1"] = None
                op["lp"] = rng.uniform(t0, t0 + 60) if rng.random() < 0.6 \
                    else None
            if op["f"] in ("put", "cas"):
                written.append(op["value"])
            ops.append(op)
            t = t1 + rng.uniform(0, 5)
    state = None
    for op in sorted((o for o in ops if o["lp"] is not None),
                     key=lambda o: o["lp"]):
        op["before"] = state
        f = op["f"]
        if f == "get":
            op["result"] = state
        elif f == "put":
            state = op["value"]
        elif f == "delete":
            state = None
        elif checker._cond(state, op):
            state = op["value"]
        elif op["outcome"] == "ok":
            op["outcome"], op["error"], op["result"] = "fail", "CAS_FAILED", \
                state
        op["after"] = state
    return ops


def writer_of(ops, value):
    for op in ops:
        if op["f"] in ("put", "cas") and op.get("value") == value:
            return op
    return None


class Linearizable(unittest.TestCase):
    def test_generated_histories_pass(self):
        for seed in range(150):
            ops = gen_history(seed)
            res = checker.check_key("k", ops)
            self.assertTrue(res.ok, "seed %d:\n%s" % (seed, res.report()))

    def test_more_concurrency_passes(self):
        for seed in range(20):
            ops = gen_history(1000 + seed, procs=8, ops_per_proc=20,
                              unknown_p=0.2)
            self.assertTrue(checker.check_key("k", ops).ok, "seed %d" % seed)

    def test_keys_are_checked_apart(self):
        ops = gen_history(1, key="a") + gen_history(2, key="b")
        res = checker.check_history(ops)
        self.assertEqual([r.key for r in res], ["a", "b"])
        self.assertTrue(all(r.ok for r in res))

    def test_unknown_write_may_never_happen(self):
        ops = [
            {"f": "put", "key": "k", "value": "a", "t0": 0, "t1": 10,
             "outcome": "ok"},
            {"f": "put", "key": "k", "value": "b", "t0": 20, "t1": None,
             "outcome": "unknown", "error": "TIMEOUT"},
            {"f": "get", "key": "k", "t0": 30, "t1": 40, "outcome": "ok",
             "result": "a"},
        ]
        self.assertTrue(checker.check_key("k", ops).ok)

    def test_unknown_write_may_happen_late(self):
        ops = [
            {"f": "put", "key": "k", "value": "b", "t0": 0, "t1": None,
             "outcome": "unknown", "error": "TIMEOUT"},
            {"f": "put", "key": "k", "value": "a", "t0": 10, "t1": 20,
             "outcome": "ok"},
            {"f": "get", "key": "k", "t0": 30, "t1": 40, "outcome": "ok",
             "result": "a"},
            {"f": "get", "key": "k", "t0": 50, "t1": 60, "outcome": "ok",
             "result": "b"},
        ]
        self.assertTrue(checker.check_key("k", ops).ok)


class Caught(unittest.TestCase):
    def caught(self, ops, what):
        res = checker.check_key("k", ops)
        self.assertFalse(res.ok, what)
        self.assertFalse(res.gave_up, what)
        text = res.report()
        print("\n--- %s ---\n%s" % (what, text))
        self.assertIn(">> ", text)
        self.assertTrue(res.window())
        return res

    def test_stale_read(self):
        """A read that returns a value overwritten (by a write that ended)
        before the read began (the stale read a lagging follower serves)."""
        done = 0
        for seed in range(200):
            ops = gen_history(seed)
            fin = [o for o in ops if o["outcome"] == "ok" and o["t1"]]
            puts = [o for o in fin if o["f"] == "put"]
            gets = [o for o in fin if o["f"] == "get"]
            triple = next(((w1, w2, g) for w1 in puts for w2 in puts
                           for g in gets if w1["t1"] < w2["t0"] and
                           w2["t1"] < g["t0"]), None)
            if triple is None:
                continue
            w1, _, g = triple
            g["result"] = w1["value"]
            res = self.caught(ops, "stale read, seed %d" % seed)
            self.assertIn(g, res.window())
            done += 1
            if done == 3:
                break
        self.assertEqual(done, 3)

    def test_lost_write(self):
        """An acknowledged put that a later read does not see, with no other
        write that could explain it."""
        done = 0
        for seed in range(300):
            ops = gen_history(seed, unknown_p=0.05)
            writes = [o for o in ops if o["f"] != "get"]
            for w in ops:
                if w["f"] != "put" or w["outcome"] != "ok":
                    continue
                prev = writer_of(ops, w.get("before"))
                if prev is None or prev["t1"] is None or prev["t1"] >= w["t0"]:
                    continue
                g = next((o for o in ops if o["f"] == "get" and
                          o["t0"] > w["t1"] and o["result"] == w["value"]),
                         None)
                if g is None or any(o is not w and o["t0"] <= g["t1"] and
                                    (o["t1"] is None or o["t1"] >= w["t0"])
                                    for o in writes):
                    continue
                g["result"] = w["before"]
                self.caught(ops, "lost write, seed %d" % seed)
                done += 1
                break
            if done == 3:
                break
        self.assertEqual(done, 3)

    def test_duplicated_append(self):
        """A list built by cas appends where one element shows up twice
        (a write applied twice)."""
        ops = [
            {"f": "cas", "key": "k", "absent": True, "value": "1", "t0": 0,
             "t1": 10, "outcome": "ok", "proc": 1},
            {"f": "get", "key": "k", "t0": 12, "t1": 15, "outcome": "ok",
             "result": "1", "proc": 2},
            {"f": "cas", "key": "k", "expected": "1", "value": "1 2",
             "t0": 16, "t1": 30, "outcome": "ok", "proc": 2},
            {"f": "get", "key": "k", "t0": 40, "t1": 50, "outcome": "ok",
             "result": "1 2 2", "proc": 1},
        ]
        self.caught(ops, "duplicated append")
        probs = checker.check_lists(ops, [
            {"key": "k", "elem": "1", "outcome": "ok"},
            {"key": "k", "elem": "2", "outcome": "ok"}], {"k": "1 2 2"})
        print("\n".join(probs))
        self.assertTrue(any("duplicated" in p for p in probs))

    def test_lost_append(self):
        probs = checker.check_lists([], [
            {"key": "k", "elem": "1", "outcome": "ok"},
            {"key": "k", "elem": "2", "outcome": "ok"},
            {"key": "k", "elem": "3", "outcome": "unknown"}], {"k": "1 3"})
        self.assertEqual(len(probs), 1)
        self.assertIn("acknowledged append 2 lost", probs[0])

    def test_reordered_append(self):
        ops = [{"f": "get", "key": "k", "t0": 0, "t1": 1, "outcome": "ok",
                "result": "2 1"}]
        probs = checker.check_lists(ops, [], {"k": "1 2"})
        self.assertTrue(any("not a prefix" in p for p in probs))

    def test_counter_bounds(self):
        incrs = ([{"key": "c", "outcome": "ok"}] * 5 +
                 [{"key": "c", "outcome": "unknown"}] * 2 +
                 [{"key": "c", "outcome": "fail"}] * 3)
        self.assertEqual(checker.check_counters(incrs, {"c": "6 x"}), [])
        self.assertEqual(checker.check_counters(incrs, {"c": "5 x"}), [])
        self.assertEqual(checker.check_counters(incrs, {"c": "7 x"}), [])
        lost = checker.check_counters(incrs, {"c": "4 x"})
        dup = checker.check_counters(incrs, {"c": "8 x"})
        print("\n".join(lost + dup))
        self.assertIn("lost", lost[0])
        self.assertIn("duplicated", dup[0])


def fin(key, node, t, result=None, error="OK"):
    """A final read (jepsen.py's step 4) of `key` on `node` at time t."""
    op = {"f": "get", "key": key, "proc": checker.FINAL + "n%d" % node,
          "node": node, "t0": t, "t1": t + 1, "error": error,
          "outcome": "ok" if error == "OK" else "unknown"}
    if error == "OK":
        op["result"] = result
    else:
        op["t1"] = None
        op["message"] = "no leader of group 2"
    return op


class FinalReads(unittest.TestCase):
    """A group that lost its majority has no leader after healing, so the
    final reads of its keys fail. That is unavailability, its own verdict,
    and never "lost increments (final 0)" or "not a prefix of the final
    None": nothing says the acknowledged writes are gone."""

    INCRS = [{"key": "ctr-0", "outcome": "ok"}] * 3

    def counter_ops(self):
        ops = []
        for n in range(3):  # three acknowledged increments, by cas
            ops.append({"f": "cas", "key": "ctr-0", "t0": 10 * n,
                        "t1": 10 * n + 5, "outcome": "ok", "error": "OK",
                        "absent": n == 0, "expected":
                        None if n == 0 else "%d t%d" % (n, n),
                        "value": "%d t%d" % (n + 1, n + 1)})
        return ops

    def test_failed_final_read_is_unavailability_not_loss(self):
        ops = self.counter_ops() + [
            fin("ctr-0", nd, 100 + nd, error="NO_LEADER") for nd in (1, 2, 3)]
        probs = checker.check_workloads(ops, [], self.INCRS, ["ctr-0"],
                                        {"ctr-0": 2})
        print("\n".join(probs))
        self.assertEqual(len(probs), 1, probs)
        self.assertTrue(probs[0].startswith(
            "unavailable at the end: final read of ctr-0 failed (group 2)"),
            probs[0])
        self.assertIn("n1 NO_LEADER", probs[0])
        self.assertNotIn("lost", probs[0])
        # The counter check alone: a key with no final value is not a 0.
        self.assertEqual(checker.check_counters(self.INCRS, {}), [])

    def test_absent_key_is_still_loss(self):
        """A final read that answered "absent" is a value (0), not a
        failure: the three acknowledged increments are lost."""
        ops = self.counter_ops() + [fin("ctr-0", nd, 100 + nd)
                                    for nd in (1, 2, 3)]
        probs = checker.check_workloads(ops, [], self.INCRS, ["ctr-0"])
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("final 0 < 3 acknowledged increments (lost)", probs[0])

    def test_read_after_retries_passes(self):
        ops = self.counter_ops() + [
            fin("ctr-0", 1, 100, error="NO_LEADER"),
            fin("ctr-0", 1, 110, "3 t3"), fin("ctr-0", 2, 120, "3 t3"),
            fin("ctr-0", 3, 130, error="TIMEOUT"),
            fin("ctr-0", 3, 140, "3 t3")]
        self.assertEqual(checker.check_workloads(
            ops, [], self.INCRS, ["ctr-0"]), [])
        final, failed = checker.final_state(ops)
        self.assertEqual(final, {"ctr-0": "3 t3"})
        self.assertEqual(failed, {})

    def test_one_node_cannot_read(self):
        """Another node read the key: its value is checked, and the node
        that could not is named."""
        ops = self.counter_ops() + [
            fin("ctr-0", 1, 100, "3 t3"), fin("ctr-0", 2, 110, "2 t2"),
            fin("ctr-0", 3, 120, error="TIMEOUT")]
        probs = checker.check_workloads(ops, [], self.INCRS, ["ctr-0"])
        print("\n".join(probs))
        self.assertEqual(len(probs), 2, probs)
        self.assertTrue(probs[0].startswith(
            "unavailable at the end: final read of ctr-0 failed on n3"))
        # The latest final read (n2's) is the final value: one lost.
        self.assertIn("final 2 < 3 acknowledged increments (lost)", probs[1])

    def test_unread_list_is_not_reordered(self):
        ops = [
            {"f": "get", "key": "list-0", "t0": 0, "t1": 1, "outcome": "ok",
             "error": "OK", "result": "a"},
            {"f": "get", "key": "list-0", "t0": 2, "t1": 3, "outcome": "ok",
             "error": "OK", "result": "a b"},
        ] + [fin("list-0", nd, 10 + nd, error="UNAVAILABLE") for nd in (1, 2)]
        appends = [{"key": "list-0", "elem": e, "outcome": "ok"}
                   for e in "abc"]
        probs = checker.check_workloads(ops, appends, [], ["list-0"])
        print("\n".join(probs))
        self.assertEqual(len(probs), 1, probs)
        self.assertTrue(probs[0].startswith(
            "unavailable at the end: final read of list-0 failed"))
        self.assertEqual(checker.check_lists(ops, appends, {}), [])

    def test_unread_list_seen_reordered_is_caught(self):
        """Without a final value the lists seen are still checked against
        one another (each a prefix of the longest)."""
        ops = [
            {"f": "get", "key": "list-0", "t0": 0, "t1": 1, "outcome": "ok",
             "error": "OK", "result": "b"},
            {"f": "get", "key": "list-0", "t0": 2, "t1": 3, "outcome": "ok",
             "error": "OK", "result": "a b"},
        ]
        probs = checker.check_lists(ops, [], {})
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("not a prefix of the longest seen 'a b'", probs[0])

    def test_key_without_any_final_read(self):
        probs = checker.check_final(["reg-0"], {}, {})
        self.assertEqual(probs, ["unavailable at the end: final read of "
                                 "reg-0 failed: no final read"])

    def test_verdict(self):
        self.assertEqual(checker.verdict([]), "PASS")
        unav = checker.check_final(["ctr-0", "list-1"], {}, {})
        self.assertEqual(checker.verdict(unav), "FAIL (unavailable at the "
                         "end: 2 final reads failed; no lost, duplicated or "
                         "reordered write in what was read)")
        lost = checker.check_counters(self.INCRS, {"ctr-0": None})
        self.assertEqual(checker.verdict(lost), "FAIL (1 problems)")
        self.assertEqual(checker.verdict(lost + unav),
                         "FAIL (3 problems; 2 unavailable at the end)")


if __name__ == "__main__":
    unittest.main()
