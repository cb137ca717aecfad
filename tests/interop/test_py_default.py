# python-socketio (Debian python3-socketio) sync client against the echo app,
# transports: default (polling, then the upgrade to WebSocket).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from py_scenarios import run_scenarios  # noqa: E402

run_scenarios("default")
