// socket.io-client 4.x against the echo app, transports: default (polling, then the upgrade to WebSocket).
"use strict";
require("./lib/client_scenarios").runScenarios("default");
