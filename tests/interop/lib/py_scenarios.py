# tests/interop/lib/py_scenarios.py — the scenario set the python-socketio
# client (Debian's python3-socketio 5.x, sync socketio.Client) runs against
# the echo app; the three test_py_*.py files pick the transports.

import logging
import os
import queue
import time

from harness import eq, run, skip, wait_until

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "default": None,  # polling first, then the upgrade to WebSocket
}

# Every JSON type, nesting, unicode (BMP and astral), and empty containers.
MIXED_ARGS = [
    "plain string", "", 0, 42, -7, 3.25, True, False, None,
    {"nested": {"list": [1, "two", {"three": [3]}], "empty": {}}},
    "héllo wörld — 你好，世界 — 🚀✨",
    {}, [], ["a", ["b", ["c"]]],
]


class Events:
    """Thread-safe recorder of the events one namespace receives."""

    def __init__(self):
        self.q = {}

    def queue(self, event):
        return self.q.setdefault(event, queue.Queue())

    def handler(self, event):
        qu = self.queue(event)
        return lambda *args: qu.put(list(args))

    def get(self, event, timeout=5.0):
        try:
            return self.queue(event).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no '{event}' event within {timeout} s") from None


def run_scenarios(mode):
    try:
        import socketio
    except ImportError:
        skip("python socketio is not importable (Debian: python3-socketio)")
    transports = TRANSPORTS[mode]
    expect_transport = "polling" if mode == "polling" else "websocket"

    def body(h):
        # A slower heartbeat than the raw tests (300/200 ms, where it is the
        # subject): this client runs every event handler on a thread of its
        # own, and under a parallel `make check` it can miss a 200 ms pong
        # deadline in the 2,000-event burst and lose the session.
        server = h.server(ping_interval=1000, ping_timeout=3000)
        # SIOHUB_PY_DEBUG=1: the clients' own logs on stderr.
        debug = bool(os.environ.get("SIOHUB_PY_DEBUG"))
        if debug:
            logging.basicConfig(level=logging.INFO, format="%(relativeCreated)d %(name)s %(message)s")
        sio = socketio.Client(reconnection=True, reconnection_delay=0.1,
                              reconnection_delay_max=0.5, randomization_factor=0,
                              handle_sigint=False, logger=debug, engineio_logger=debug)
        h.defer(sio.disconnect)
        auth = {"token": "py-token", "n": 2, "nested": {"ok": True}}
        ev = {"/": Events(), "/custom": Events()}
        disconnects = {"/": 0, "/custom": 0}
        history = []  # connect/disconnect events, for failure messages
        t0 = time.monotonic()
        for ns, rec in ev.items():
            for name in ("auth", "message-back"):
                sio.on(name, rec.handler(name), namespace=ns)

            def on_disconnect(ns=ns):
                disconnects[ns] += 1
                history.append(f"{time.monotonic() - t0:.2f} disconnect {ns}")

            def on_connect(ns=ns):
                history.append(f"{time.monotonic() - t0:.2f} connect {ns}")
            sio.on("disconnect", on_disconnect, namespace=ns)
            sio.on("connect", on_connect, namespace=ns)

        def client_state():
            return (f"connected={sio.connected} namespaces={sorted(sio.namespaces)} "
                    f"eio.state={sio.eio.state} transport={sio.eio.current_transport} "
                    f"disconnects={disconnects} history={history}")

        def connect():
            sio.connect(server.url, namespaces=["/", "/custom"], transports=transports,
                        auth=auth, wait_timeout=5)
            assert sio.connected
            assert set(sio.namespaces) == {"/", "/custom"}, sio.namespaces
        h.case("connects to / and /custom over one Engine.IO session", connect)

        def got_auth():
            eq(ev["/"].get("auth"), [auth])
            eq(ev["/custom"].get("auth"), [auth])
        h.case("receives 'auth' with the auth object on each namespace", got_auth)

        def transport():
            if mode == "default":
                wait_until(lambda: sio.transport() == "websocket", 5, "upgrade to websocket")
            assert sio.transport() == expect_transport, sio.transport()
            time.sleep(0.3)
            assert sio.transport() == expect_transport, sio.transport()
        h.case(f"transport is {expect_transport}", transport)

        for ns in ("/", "/custom"):
            def message_back(ns=ns):
                sio.emit("message", tuple(MIXED_ARGS), namespace=ns)
                eq(ev[ns].get("message-back"), MIXED_ARGS)
            h.case(f"{ns}: message -> message-back with mixed arguments", message_back)

            def call(ns=ns):
                got = sio.call("message-with-ack", tuple(MIXED_ARGS), namespace=ns, timeout=5)
                eq(list(got), MIXED_ARGS)
                one = sio.call("message-with-ack", {"id": 7}, namespace=ns, timeout=5)
                eq(one, {"id": 7})
            h.case(f"{ns}: call() gets the ack with the same arguments", call)

            def emit_callback(ns=ns):
                acks = queue.Queue()
                sio.emit("message-with-ack", ("cb", 1, {"x": [None]}), namespace=ns,
                         callback=lambda *a: acks.put(list(a)))
                eq(acks.get(timeout=5), ["cb", 1, {"x": [None]}])
            h.case(f"{ns}: emit with a callback gets the ack", emit_callback)

            def binary_back(ns=ns):
                args = ["before", b"\x00\x01\x02\xfd\xfe\xff",
                        {"inner": b"\xab" * 70000, "label": "x"}, "after"]
                sio.emit("message", tuple(args), namespace=ns)
                eq(ev[ns].get("message-back"), args)
            h.case(f"{ns}: binary arguments both ways via message-back", binary_back)

            def binary_ack(ns=ns):
                args = [b"binary ack payload \xff", {"b": b"\x09\x08\x07"}, "text"]
                got = sio.call("message-with-ack", tuple(args), namespace=ns, timeout=5)
                eq(list(got), args)
            h.case(f"{ns}: binary arguments in an ack", binary_ack)

        def bad_namespace():
            other = socketio.Client(reconnection=False, handle_sigint=False)
            errors = queue.Queue()
            other.on("connect_error", lambda *a: errors.put(list(a)), namespace="/does-not-exist")
            try:
                other.connect(server.url, namespaces=["/does-not-exist"], transports=transports,
                              wait_timeout=1)
                raise AssertionError("connected to a namespace that does not exist")
            except socketio.exceptions.ConnectionError:
                pass
            finally:
                other.disconnect()
            eq(errors.get(timeout=3), [{"message": "Invalid namespace"}])
        h.case("a namespace that does not exist gives connect_error", bad_namespace)

        def burst():
            # python-socketio 5.7.2 runs every incoming event on its own
            # thread, so the order events reach our handler is not the order
            # they arrived in: count them (none lost, none doubled) and leave
            # the order check to the Node client and the raw tests. Over
            # polling this also checks that no poll response carries more
            # than 16 packets (python-engineio 4.3.4 aborts the session on a
            # bigger payload: Payload.max_decode_packets) and that the ping
            # is not stuck behind the backlog (pingTimeout is 200 ms).
            n = 2000
            got = queue.Queue()
            sid = sio.get_sid("/custom")
            sio.on("message-back", lambda *a: got.put(a), namespace="/custom")
            try:
                for i in range(n):
                    sio.emit("message", (i, f"m{i}"), namespace="/custom")
                seen = set()
                deadline = time.monotonic() + 20
                while len(seen) < n:
                    left = deadline - time.monotonic()
                    try:
                        a = got.get(timeout=max(left, 0.01))
                    except queue.Empty:
                        raise AssertionError(f"only {len(seen)} of {n} message-back events") from None
                    assert len(a) == 2 and a[1] == f"m{a[0]}" and a[0] not in seen, a
                    i = a[0]
                    seen.add(i)
                assert sio.get_sid("/custom") == sid, "the session survived the burst"
            finally:
                sio.on("message-back", ev["/custom"].handler("message-back"), namespace="/custom")
        h.case("2,000 messages all come back, once each, on one session", burst, timeout=25)

        def reconnect():
            assert sio.connected, f"connected before the restart ({client_state()})"
            n_auth = {ns: ev[ns].queue("auth").qsize() for ns in ev}
            before = dict(disconnects)
            server.stop()
            try:
                wait_until(lambda: disconnects["/"] > before["/"] and disconnects["/custom"] > before["/custom"],
                           8, lambda: f"disconnect on both namespaces ({client_state()})")
            finally:
                time.sleep(0.2)
                server.start()  # same port; also when the wait failed, for the cases after
            for ns in ev:
                for _ in range(n_auth[ns]):
                    ev[ns].get("auth", 0)
                eq(ev[ns].get("auth", 10), [auth], ns)
            wait_until(lambda: sio.connected and set(sio.namespaces) == {"/", "/custom"}, 5,
                       "both namespaces connected again")
            got = sio.call("message-with-ack", ("after restart", {"ok": 1}), namespace="/custom", timeout=5)
            eq(list(got), ["after restart", {"ok": 1}])
            if mode == "default":
                wait_until(lambda: sio.transport() == "websocket", 5, "upgrade to websocket")
            assert sio.transport() == expect_transport, sio.transport()
        h.case("reconnects by itself after the server restarts", reconnect, timeout=25)

        h.case("the daemon is still running", server.assert_alive)

    run(body, timeout=90)
