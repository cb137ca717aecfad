// socket.io-client 4.x against the echo app, transports: websocket.
"use strict";
require("./lib/client_scenarios").runScenarios("websocket");
