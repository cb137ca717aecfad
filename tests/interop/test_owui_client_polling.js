// Open WebUI's browser client (socket.io-client, transports ['polling',
// 'websocket']) against the openwebui app run with
// ENABLE_WEBSOCKET_SUPPORT=false (polling only): see lib/owui_scenarios.js.
"use strict";
require("./lib/owui_scenarios").runOwuiScenarios("polling");
