# python-socketio (Debian python3-socketio) tabs against the openwebui app,
# transports: websocket. See lib/owui_py.py.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from owui_py import run_owui_scenarios  # noqa: E402

run_owui_scenarios("websocket")
