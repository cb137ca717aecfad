# The usage cleanup runs on one node of the fleet at a time, under
# {prefix}:usage_cleanup_lock (SET NX PX, renewed by a script while ours).
# Three nodes with a short lock timeout (1500 ms) and a fast cleanup
# (300 ms): over many cycles the lock key always names exactly one live
# node (and has an expiry), only that node logs "acquired", and the cleanup
# runs (a usage entry expires). kill -9 of the holder: another node takes
# the lock within the TTL plus a tick, and the cleanup keeps running.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fleet import PREFIX, Fleet, wait_for  # noqa: E402
from harness import eq, run  # noqa: E402

LOCK_TTL_MS = 1500
INTERVAL_MS = 300
TICK_MS = min(LOCK_TTL_MS // 3, INTERVAL_MS)  # store/lock.c: renewals 3 x per ttl, at least every interval
KEY = f"{PREFIX}:usage_cleanup_lock"


def acquired_lines(node):
    with open(node.log_path, encoding="utf-8", errors="replace") as fp:
        return [l for l in fp.read().splitlines() if f"lock {KEY}: acquired" in l]


def lost_lines(node):
    with open(node.log_path, encoding="utf-8", errors="replace") as fp:
        return [l for l in fp.read().splitlines() if re.search(f"lock {re.escape(KEY)}: .*(lost|renewal failed|cannot renew)", l)]


def body(h):
    f = Fleet(h, nodes=3, args=["--lock-timeout", str(LOCK_TTL_MS),
                                "--usage-cleanup-interval", str(INTERVAL_MS),
                                "--usage-timeout", "1000"])
    ids = {f.node_id(n): n for n in f.nodes}
    state = {}

    def observe(seconds, alive_ids):
        """Samples the lock key every 10 ms; returns the values seen (in
        order, repeats collapsed). Each sample must name one of alive_ids
        and carry an expiry."""
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pipe = f.r.pipeline()
            pipe.get(KEY)
            pipe.pttl(KEY)
            value, pttl = pipe.execute()
            value = value.decode() if value is not None else None
            if value not in alive_ids:
                raise AssertionError(f"lock value {value!r} is not a live node id ({sorted(alive_ids)}); seen {seen}")
            if not 0 < pttl <= LOCK_TTL_MS:
                raise AssertionError(f"lock PTTL {pttl} outside (0, {LOCK_TTL_MS}]")
            if not seen or seen[-1] != value:
                seen.append(value)
            time.sleep(0.01)
        return seen

    def usage_expires(node, model, limit):
        """A usage ping from a tab on node makes an entry that the cleanup
        (wherever it runs) removes within `limit` s; the tab stays."""
        tab = f.connect(node, "u1")
        f.wait_in_pools([tab])
        tab.sio.emit("usage", {"model": model})
        wait_for(lambda: model in f.hash_json("usage_pool"), 10, f"{model} in usage_pool")
        t0 = time.monotonic()
        wait_for(lambda: model not in f.hash_json("usage_pool"), limit,
                 lambda: f"{model} still in usage_pool: {f.hash_json('usage_pool')}")
        took = time.monotonic() - t0
        tab.disconnect()
        return took

    def steady():
        wait_for(lambda: f.r.get(KEY) is not None, 10, "someone takes the lock")
        # ~25 lock cycles (renewals) and ~20 cleanup runs.
        seen = observe(6, set(ids))
        eq(len(seen), 1, f"one holder throughout, not {seen}")
        holder = seen[0]
        state["holder"] = holder
        per_node = {nid: len(acquired_lines(n)) for nid, n in ids.items()}
        eq(per_node, {nid: (1 if nid == holder else 0) for nid in ids}, "'acquired' log lines per node")
        for nid, n in ids.items():
            eq(lost_lines(n), [], f"lock lost on {nid}")
        # The metric agrees: exactly the holder says it holds the lock.
        for nid, n in ids.items():
            status, text = f.api(n, "GET", "/metrics")
            held = re.search(r'siohub_lock_held\{lock="usage_cleanup"\} (\d+)', text.decode() if isinstance(text, bytes) else text)
            eq(held and held.group(1), "1" if nid == holder else "0", f"siohub_lock_held on {nid}")
        # And the job runs: a usage entry expires (timeout 1 s, counted in
        # whole seconds: about 2 s, plus a cleanup interval).
        took = usage_expires(ids[holder], "model-steady", 8)
        print(f"# usage entry expired {took:.2f} s after it was seen (holder {holder})", flush=True)

    def holder_killed():
        holder = state.get("holder") or f.r.get(KEY).decode()
        victim = ids[holder]
        # Kill right after a renewal would be the worst case; any moment is
        # within the bound.
        victim.kill9()
        t_kill = time.monotonic()
        survivors = {nid for nid in ids if nid != holder}
        new = None
        while time.monotonic() - t_kill < 10:
            v = f.r.get(KEY)
            if v is not None and v.decode() != holder:
                new = v.decode()
                break
            time.sleep(0.005)
        took_ms = (time.monotonic() - t_kill) * 1000
        if new is None:
            raise AssertionError(f"nobody took the lock within 10 s of killing {holder}")
        if new not in survivors:
            raise AssertionError(f"the lock names {new!r}, not a survivor")
        print(f"# lock moved from {holder} to {new} {took_ms:.0f} ms after kill -9 "
              f"(ttl {LOCK_TTL_MS} ms + tick {TICK_MS} ms)", flush=True)
        # The TTL plus a tick, and a margin for a loaded machine.
        bound = LOCK_TTL_MS + TICK_MS + 1000
        if took_ms > bound:
            raise AssertionError(f"the lock moved after {took_ms:.0f} ms, more than {bound} ms")
        wait_for(lambda: len(acquired_lines(ids[new])) == 1, 5, f"'acquired' logged by {new}")
        # Then one holder again, the new one, over many cycles.
        seen = observe(4, survivors)
        eq(seen, [new], "one holder after the handoff")
        for nid in survivors:
            eq(len(acquired_lines(ids[nid])), 1 if nid == new else 0, f"'acquired' lines on {nid}")
            eq(lost_lines(ids[nid]), [], f"lock lost on {nid}")
        # The cleanup keeps running, on the new holder's watch: a usage
        # entry made on the other survivor expires.
        other = next(nid for nid in survivors if nid != new)
        took = usage_expires(ids[other], "model-after", 8)
        print(f"# after the handoff a usage entry expired in {took:.2f} s", flush=True)
        # The session reaper's lock left the dead node too (the default
        # lock timeout here is 1500 ms as well).
        wait_for(lambda: (f.r.get(f"{PREFIX}:session_cleanup_lock") or b"").decode() in survivors, 10,
                 "session_cleanup_lock held by a survivor")

    h.case("over many cycles the lock names exactly one live node, which alone runs the cleanup", steady, timeout=40)
    h.case("kill -9 of the holder: another node takes the lock within the TTL + a tick; cleanup goes on",
           holder_killed, timeout=40)


run(body, timeout=150, case_timeout=40)
