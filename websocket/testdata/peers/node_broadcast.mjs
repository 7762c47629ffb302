// Node's ws clients for the broadcast and ping tests
// (websocket/broadcast_interop_test.go):
//
//   node node_broadcast.mjs echo|quiet URL SPEC...
//
// Opens one connection per SPEC to URL?peer=node-<i>: "default" makes
// ws's default offer ("permessage-deflate; client_max_window_bits"),
// "w<N>" (N 8-15) also offers server_max_window_bits=N. With "echo", a
// connection answers every data message with a text message "got <k>
// <text|binary> <length> <sha256 hex>" (k counts the messages from 0)
// and then with the message itself, of the same type; with "quiet" it
// sends nothing (ws answers pings on its own). Prints, per connection,
// "ext <id> <the server's Sec-WebSocket-Extensions answer>" and
// "applied <id> <the extensions ws uses>" once open, "closed <id>
// <code>" once the server has closed it, and "FAIL <id>: <why>" on an
// error. Exits once every connection has closed, with the number of
// failures, or after 90 s with 100.
import { createHash } from "node:crypto";
import WebSocket from "ws";

const [how, url, ...specs] = process.argv.slice(2);
if (!["echo", "quiet"].includes(how) || !url || specs.length === 0 || !specs.every((s) => /^(default|w(8|9|1[0-5]))$/.test(s))) {
  console.error("usage: node node_broadcast.mjs echo|quiet URL default|w<8-15>...");
  process.exit(100);
}
let failures = 0;
let open = specs.length;
const timer = setTimeout(() => {
  console.log(`FAIL node: ${open} connection(s) still open after 90 s`);
  process.exit(100);
}, 90000);

function fail(id, why) {
  failures++;
  console.log(`FAIL ${id}: ${why}`);
}

specs.forEach((spec, i) => {
  const id = `node-${i}`;
  const perMessageDeflate = spec === "default" ? true : { serverMaxWindowBits: Number(spec.slice(1)) };
  const ws = new WebSocket(`${url}?peer=${id}`, { perMessageDeflate });
  ws.binaryType = "nodebuffer";
  let count = 0;
  ws.once("upgrade", (res) => {
    console.log(`ext ${id} ${res.headers["sec-websocket-extensions"] ?? ""}`);
  });
  ws.once("open", () => console.log(`applied ${id} ${ws.extensions}`));
  ws.on("message", (data, isBinary) => {
    const k = count++;
    if (how !== "echo") {
      fail(id, `message ${k} in quiet mode`);
      return;
    }
    const sum = createHash("sha256").update(data).digest("hex");
    ws.send(`got ${k} ${isBinary ? "binary" : "text"} ${data.length} ${sum}`);
    ws.send(data, { binary: isBinary });
  });
  ws.on("error", (err) => fail(id, err.message));
  ws.once("close", (code) => {
    console.log(`closed ${id} ${code}`);
    if (--open === 0) {
      clearTimeout(timer);
      process.exitCode = failures;
    }
  });
});
