// socket.io-client 4.x against the echo app, transports: polling.
"use strict";
require("./lib/client_scenarios").runScenarios("polling");
