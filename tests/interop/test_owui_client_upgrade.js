// Open WebUI's browser client (socket.io-client, transports ['polling',
// 'websocket']) against the openwebui app offering the upgrade (siohub's
// default): see lib/owui_scenarios.js.
"use strict";
require("./lib/owui_scenarios").runOwuiScenarios("upgrade");
