# tests/interop/lib/harness.py — runs one Python interop test file against a
# live siohubd (or a reference server) on a free loopback port. The same
# contract as harness.js:
#
# - exit 0 when every case passed, 1 when one failed, 77 to skip, 99 on a
#   hard error; one line per case and a closing "NAME: N passed, N failed";
# - the daemon is `$top_builddir/siohubd` (or $SIOHUBD), or the shell command
#   in SIOHUB_REFERENCE_SERVER, started with
#   --app echo --listen 127.0.0.1:PORT --ping-interval 300 --ping-timeout 200;
#   it is ready when a polling handshake answers 200; its stderr goes to a
#   file; app="openwebui" starts that app instead (ready at /ws/socket.io/)
#   and env adds environment variables; stop() sends SIGTERM and the
#   daemon must exit 0 within 5 s;
# - the whole file has a deadline (SIGALRM) after which every daemon is
#   killed and the test fails, so nothing hangs.
#
# With SIOHUB_REQUIRE_INTEROP set (CI), a skip is a hard error instead.
#
# Fleet tests: h.server(app="openwebui", env={...}, healthz=True) starts the
# Open WebUI app (Engine.IO at /ws/socket.io/) and waits for /healthz 200
# too; h.redis() starts a redis-server ($REDIS_SERVER, exported by make
# check) on a free loopback port, which stop() kills and start() brings
# back on the same port; without REDIS_SERVER the test skips.

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

HOST = "127.0.0.1"
# Loopback only: never through a proxy a CI environment may configure
# (urllib below and the clients' requests both read these).
for _var in ("no_proxy", "NO_PROXY"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), HOST, "localhost"]))
STOP_GRACE = 5.0
READY_TIMEOUT = float(os.environ.get("SIOHUB_READY_TIMEOUT_MS", "15000")) / 1000
TEST_NAME = os.path.splitext(os.path.basename(sys.argv[0] or "interop"))[0]


def skip(reason):
    if os.environ.get("SIOHUB_REQUIRE_INTEROP"):
        print(f"ERROR: {reason} (SIOHUB_REQUIRE_INTEROP is set, so this is not a skip)", flush=True)
        os._exit(99)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(77)


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    """(status, body) of a GET to 127.0.0.1:port, errors as HTTP statuses."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def eq(got, want, what=""):
    """assert got == want, saying both when not."""
    if got != want:
        raise AssertionError(f"{what + ': ' if what else ''}got {got!r}, want {want!r}")


def wait_until(pred, timeout, what):
    """Polls pred() every 10 ms; raises AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout} s: {what() if callable(what) else what}")
        time.sleep(0.01)


def _tail(path, lines=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "\n".join("  | " + l for l in f.read().splitlines()[-lines:])
    except OSError:
        return "  | (no log)"


class Daemon:
    def __init__(self, harness, args=(), ping_interval=300, ping_timeout=200, app="echo",
                 env=None, healthz=False, path=None):
        self.h = harness
        self.app = app
        self.env = env
        self.extra = list(args)
        self.app = app
        self.env = env
        self.healthz = healthz
        self.path_override = path
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.port = 0
        self.proc = None
        self.starts = 0
        self.log_path = None

    @property
    def engine_path(self):
        """Where the app serves Engine.IO (each app's default path)."""
        return self.path_override or ("/ws/socket.io/" if self.app == "openwebui" else "/socket.io/")

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    def argv(self):
        args = ["--app", self.app, "--listen", f"{HOST}:{self.port}",
                "--ping-interval", str(self.ping_interval),
                "--ping-timeout", str(self.ping_timeout)] + self.extra
        ref = os.environ.get("SIOHUB_REFERENCE_SERVER")
        if ref:
            return ["/bin/sh", "-c", f'exec {ref} "$@"', "sh"] + args
        daemon = os.environ.get("SIOHUBD") or os.path.join(
            os.environ.get("top_builddir", os.getcwd()), "siohubd")
        return [daemon] + args

    def start(self):
        """Starts the daemon (again on the same port after a stop) and waits
        until it answers a polling handshake."""
        restart = self.starts > 0
        for attempt in range(3):
            if not restart:
                self.port = free_port()
            try:
                self._spawn_and_wait()
                return self
            except RuntimeError:
                # Port lost between free_port() and bind: retry elsewhere.
                if restart or attempt == 2 or self.proc is not None:
                    raise
        return self

    def _spawn_and_wait(self):
        if self.h.closing:
            raise RuntimeError("the test is finishing: no new daemon")
        self.starts += 1
        self.log_path = self.h.log_path(f"daemon{self.h.daemon_count}")
        self.h.daemon_count += 1
        argv = self.argv()
        with open(self.log_path, "w") as log:
            log.write("# " + " ".join(argv) + "\n")
            log.flush()
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env)
        self.h.daemons.add(self)
        self.h.all_procs.append(self.proc)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.h.daemons.discard(self)
                self.proc = None
                raise RuntimeError(f"daemon exited before it was ready (status {rc}); "
                                   f"log: {self.log_path}\n{_tail(self.log_path)}")
            try:
                status, _ = http_get(self.port, f"{self.engine_path}?EIO=4&transport=polling", 1.0)
                if status == 200 and (not self.healthz or http_get(self.port, "/healthz", 1.0)[0] == 200):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"daemon not ready after {READY_TIMEOUT} s; "
                                     f"log: {self.log_path}\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError(f"daemon is not running; log: {self.log_path}\n{_tail(self.log_path)}")

    def stop(self):
        """SIGTERM; the daemon must exit 0 within 5 s (else SIGKILL + raise)."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        self.h.daemons.discard(self)
        if proc.poll() is not None:
            raise AssertionError(f"daemon had already exited (status {proc.returncode}); "
                                 f"log: {self.log_path}\n{_tail(self.log_path)}")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"daemon did not exit within {STOP_GRACE} s of SIGTERM; log: {self.log_path}")
        if rc != 0:
            raise AssertionError(f"daemon did not exit cleanly on SIGTERM (status {rc}); "
                                 f"log: {self.log_path}\n{_tail(self.log_path)}")

    def kill9(self):
        """kill -9 on purpose (a node dying); no clean exit expected."""
        self.assert_alive()
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.h.daemons.discard(self)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RedisServer:
    """redis-server on a free 127.0.0.1 port, no persistence (a restart
    starts empty). stop() kills it (an outage), start() brings it back on
    the same port."""

    def __init__(self, harness):
        self.h = harness
        self.port = 0
        self.proc = None
        self.starts = 0
        self.dir = tempfile.mkdtemp(prefix="siohub-redis-")
        self.log_path = None

    def url(self, db=0):
        return f"redis://{HOST}:{self.port}/{db}"

    def _ping(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self):
        restart = self.starts > 0
        for _ in range(5):
            if not restart:
                self.port = free_port()
            self.starts += 1
            self.log_path = self.h.log_path(f"redis{self.starts}")
            argv = [os.environ["REDIS_SERVER"], "--port", str(self.port), "--bind", HOST,
                    "--save", "", "--appendonly", "no", "--dir", self.dir, "--logfile", ""]
            with open(self.log_path, "w") as log:
                log.write("# " + " ".join(argv) + "\n")
                log.flush()
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.h.all_procs.append(self.proc)
            deadline = time.monotonic() + 5
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self._ping():
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"redis-server on port {self.port} did not answer PING; "
                                     f"log: {self.log_path}\n{_tail(self.log_path)}")
            # Exited: the port was taken meanwhile. A restart keeps its port.
            if restart:
                time.sleep(0.2)
        raise AssertionError(f"redis-server would not start on port {self.port}; "
                             f"log: {self.log_path}\n{_tail(self.log_path)}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Harness:
    """h = Harness(timeout=60); d = h.server(); h.case(name, fn); h.finish()"""

    def __init__(self, timeout=60, case_timeout=15):
        self.case_timeout = case_timeout
        self.passed = 0
        self.failed = 0
        self.daemons = set()
        self.all_procs = []  # every process started, for the last-resort kill
        self.closing = False
        self.daemon_count = 0
        self.cleanups = []
        self.redis_servers = []
        top = os.environ.get("top_builddir")
        if top:
            self.log_dir = os.path.join(top, "tests", "interop")
            os.makedirs(self.log_dir, exist_ok=True)
        else:
            import tempfile
            self.log_dir = tempfile.mkdtemp(prefix="siohub-interop-")
        signal.signal(signal.SIGALRM, self._deadline)
        signal.alarm(int(timeout))
        self.timeout = timeout

    def log_path(self, what):
        return os.path.join(self.log_dir, f"{TEST_NAME}.{what}.stderr")

    def _deadline(self, signo, frame):
        print(f"not ok - {TEST_NAME} did not finish within {self.timeout} s", flush=True)
        traceback.print_stack(frame, file=sys.stdout)
        print(f"{TEST_NAME}: {self.passed} passed, {self.failed + 1} failed", flush=True)
        self.kill_all()
        os._exit(1)

    def server(self, args=(), **kw):
        return Daemon(self, args, **kw).start()

    def redis(self):
        """Starts a redis-server (stopped at the end, after the daemons);
        skips the test when REDIS_SERVER is not set."""
        if not os.environ.get("REDIS_SERVER"):
            skip("REDIS_SERVER is not set (make check exports the redis-server configure found)")
        r = RedisServer(self)
        self.redis_servers.append(r)
        return r.start()

    def defer(self, fn):
        self.cleanups.append(fn)

    def case(self, name, fn, timeout=None):
        """Runs fn() in a thread with a per-case timeout; an exception or the
        timeout fails the case (a stuck thread is left behind: it is a daemon
        thread and the file-wide deadline still holds)."""
        limit = timeout or self.case_timeout
        result = {}

        def body():
            try:
                fn()
                result["ok"] = True
            except BaseException:  # noqa: B902 - report everything
                result["error"] = traceback.format_exc()

        started = time.monotonic()
        t = threading.Thread(target=body, daemon=True)
        t.start()
        t.join(limit)
        ms = int((time.monotonic() - started) * 1000)
        if result.get("ok"):
            self.passed += 1
            print(f"ok - {name} ({ms} ms)", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {name}", flush=True)
            err = result.get("error") or f"timeout after {limit} s"
            print("\n".join("    " + l for l in err.rstrip().splitlines()), flush=True)

    def finish(self):
        self.closing = True
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # cleanup is best effort
                pass
        for d in list(self.daemons):
            try:
                d.stop()
                self.passed += 1
                print(f"ok - daemon on port {d.port} exited 0 on SIGTERM", flush=True)
            except Exception as e:  # report, keep going
                self.failed += 1
                print("not ok - daemon shutdown", flush=True)
                print("\n".join("    " + l for l in str(e).splitlines()), flush=True)
        # Redis last: the daemons release their locks and beacons on SIGTERM.
        for r in self.redis_servers:
            r.stop()
            shutil.rmtree(r.dir, ignore_errors=True)
        signal.alarm(0)
        print(f"{TEST_NAME}: {self.passed} passed, {self.failed} failed", flush=True)
        # os._exit: client libraries may leave non-daemon threads behind. A
        # case thread that timed out may still have started a daemon.
        self.kill_all()
        sys.stdout.flush()
        os._exit(0 if self.failed == 0 else 1)

    def kill_all(self):
        self.closing = True
        for d in list(self.daemons):
            d.kill()
        for p in self.all_procs:
            if p.poll() is None:
                p.kill()
        for r in self.redis_servers:
            shutil.rmtree(r.dir, ignore_errors=True)


def run(body, timeout=60, case_timeout=15):
    """Runs body(h) and exits with the right status whatever happens."""
    h = Harness(timeout=timeout, case_timeout=case_timeout)
    try:
        body(h)
    except SystemExit:
        h.kill_all()
        raise
    except BaseException:  # noqa: B902
        h.failed += 1
        print(f"not ok - {TEST_NAME} aborted", flush=True)
        print("\n".join("    " + l for l in traceback.format_exc().rstrip().splitlines()), flush=True)
    h.finish()
