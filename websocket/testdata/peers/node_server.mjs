// Node's ws server for the wsmachine client: node node_server.mjs [--deflate] [--tls CERT KEY]
//
// Listens on 127.0.0.1, on a port of the system's choice, which it prints
// first as "port <n>". It echoes every message, except two text commands:
// "close <code> <reason>" closes with that code and reason, and
// "ping <data>" sends a ping with data and, when the pong comes, the text
// "pong <data>". When a connection ends it prints
// "closed <path> <code> <reason>", with the code and reason of the
// client's close frame. --deflate offers permessage-deflate (ws's
// defaults); --tls serves wss:// with the PEM certificate and key. It
// exits when its standard input ends.
import { readFileSync } from "node:fs";
import { createServer as createHTTPServer } from "node:http";
import { createServer as createHTTPSServer } from "node:https";
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const deflate = args.includes("--deflate");
const tls = args.indexOf("--tls");

const server =
  tls >= 0
    ? createHTTPSServer({ cert: readFileSync(args[tls + 1]), key: readFileSync(args[tls + 2]) })
    : createHTTPServer();
const wss = new WebSocketServer({ server, perMessageDeflate: deflate, maxPayload: 32 << 20 });

wss.on("connection", (ws, req) => {
  const path = req.url;
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString();
      if (text.startsWith("close ")) {
        const [code, ...reason] = text.slice("close ".length).split(" ");
        ws.close(Number(code), reason.join(" "));
        return;
      }
      if (text.startsWith("ping ")) {
        ws.ping(text.slice("ping ".length));
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on("pong", (data) => ws.send(`pong ${data.toString()}`));
  ws.on("close", (code, reason) => console.log(`closed ${path} ${code} ${reason.toString()}`));
  ws.on("error", (err) => console.log(`error ${path} ${err.message}`));
});

server.listen(0, "127.0.0.1", () => console.log(`port ${server.address().port}`));

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
