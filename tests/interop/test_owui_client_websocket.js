// Open WebUI's browser client (socket.io-client, transports ['websocket'])
// against the openwebui app: see lib/owui_scenarios.js.
"use strict";
require("./lib/owui_scenarios").runOwuiScenarios("websocket");
