// Node's ws client against a wsmachine echo server:
//
//   node node_client.mjs MODE URL [limit | window SERVER_BITS CLIENT_BITS]
//
// MODE is the server's compression: off, no-context-takeover or
// context-takeover. With "limit", only the checks of the server's message
// size limit (16 MiB, its default) run instead: see limitChecks. With
// "window", only the checks of windows smaller than 32 KiB run instead,
// the client offering server_max_window_bits=SERVER_BITS and
// client_max_window_bits=CLIENT_BITS (8-15): see windowChecks. The
// server at URL echoes every message, answers a text message "close
// <code> <reason>" by closing with that code and reason, answers "wire"
// with "wire <up> <down>", the bytes its TCP connection has carried from
// and to the client so far, and closes with the client's code when the
// client closes. Every check prints one line, "ok <check>" or "FAIL
// <check>: <why>"; every measurement a line "wire <label> raw=<bytes>
// up=<bytes> down=<bytes>", which the Go test judges. The exit code is
// the number of failures.
import { createHash, randomBytes } from "node:crypto";
import WebSocket from "ws";

const [mode, url, ...rest] = process.argv.slice(2);
const compressed = mode !== "off";
const limit = rest.length === 1 && rest[0] === "limit";
const bits = (s) => (/^(8|9|1[0-5])$/.test(s) ? Number(s) : NaN);
const window = rest.length === 3 && rest[0] === "window" && bits(rest[1]) > 0 && bits(rest[2]) > 0;
if (!["off", "no-context-takeover", "context-takeover"].includes(mode) || !url || (rest.length > 0 && !limit && !window)) {
  console.error("usage: node node_client.mjs off|no-context-takeover|context-takeover URL [limit | window SERVER_BITS CLIENT_BITS]");
  process.exit(100);
}
let failures = 0;

function report(name, err) {
  if (err) {
    failures++;
    console.log(`FAIL ${name}: ${err}`);
  } else {
    console.log(`ok ${name}`);
  }
}

// open connects. Every connection offers permessage-deflate and, once it
// is negotiated, compresses every message, however short (threshold 0).
// kind says what the client asks for: "default" nothing (context
// takeover both ways), "client-no-takeover" client_no_context_takeover,
// "no-takeover" that and server_no_context_takeover. windowBits, if
// given, are offered as server_max_window_bits and client_max_window_bits
// (else ws offers client_max_window_bits without a value).
function open(kind = "default", protocols = undefined, windowBits = undefined) {
  const perMessageDeflate = { threshold: 0 };
  if (kind !== "default") perMessageDeflate.clientNoContextTakeover = true;
  if (kind === "no-takeover") perMessageDeflate.serverNoContextTakeover = true;
  if (windowBits) {
    perMessageDeflate.serverMaxWindowBits = windowBits.server;
    perMessageDeflate.clientMaxWindowBits = windowBits.client;
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate });
    ws.binaryType = "nodebuffer";
    ws.kind = kind;
    ws.answer = "";
    ws.once("upgrade", (res) => {
      ws.answer = res.headers["sec-websocket-extensions"] ?? "";
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// parseExtensions parses a Sec-WebSocket-Extensions value into
// [{name, params: {param: value or true}}].
function parseExtensions(header) {
  return header
    .split(",")
    .filter((e) => e.trim() !== "")
    .map((e) => {
      const [name, ...params] = e.split(";").map((s) => s.trim());
      return {
        name,
        params: Object.fromEntries(params.map((p) => {
          const [k, v] = p.split("=");
          return [k.trim(), v === undefined ? true : v.trim()];
        })),
      };
    });
}

// checkNegotiated checks the client's view of the handshake: what the
// server answered, and that ws enabled permessage-deflate as answered.
function checkNegotiated(ws) {
  const answer = JSON.stringify(ws.answer);
  if (!compressed) {
    if (ws.extensions !== "" || ws.answer !== "") throw new Error(`extensions ${JSON.stringify(ws.extensions)}, answer ${answer}`);
    return;
  }
  if (ws.extensions !== "permessage-deflate") throw new Error(`extensions ${JSON.stringify(ws.extensions)}, answer ${answer}`);
  const ext = parseExtensions(ws.answer);
  if (ext.length !== 1 || ext[0].name !== "permessage-deflate") throw new Error(`answer ${answer}`);
  const want = {
    server_no_context_takeover: mode === "no-context-takeover" || ws.kind === "no-takeover",
    client_no_context_takeover: mode === "no-context-takeover" || ws.kind !== "default",
  };
  for (const param of Object.keys(ext[0].params)) {
    if (!(param in want)) throw new Error(`unexpected ${param} in answer ${answer}`);
  }
  for (const [param, value] of Object.entries(want)) {
    if ((ext[0].params[param] === true) !== value) throw new Error(`${param} ${!value}, want ${value}: answer ${answer}`);
  }
}

// next resolves with the next message, or rejects after ms; if
// ws.failOnClose is set, also as soon as the connection is closed, or at
// once if it was.
function next(ws, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message in ${ms} ms`)), ms);
    const onClose = (code, reason) => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      reject(new Error(`closed with ${code} ${JSON.stringify(reason.toString())} instead`));
    };
    const onMessage = (data, isBinary) => {
      clearTimeout(timer);
      if (ws.failOnClose) ws.off("close", onClose);
      resolve({ data, isBinary });
    };
    ws.once("message", onMessage);
    if (ws.failOnClose) {
      if (ws.readyState === WebSocket.CLOSED) {
        clearTimeout(timer);
        ws.off("message", onMessage);
        reject(new Error("the connection is closed"));
      } else {
        ws.once("close", onClose);
      }
    }
  });
}

function closed(ws, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no close in ${ms} ms`)), ms);
    ws.once("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

async function check(name, fn) {
  const start = performance.now();
  try {
    await fn();
    report(`${name} (${Math.round(performance.now() - start)} ms)`);
  } catch (err) {
    report(name, err.message || String(err));
  }
}

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

// jsonDoc is n bytes of JSON-like text that compresses well, as a page of
// API results does. The same in every peer script.
function jsonDoc(n) {
  const parts = ["["];
  let size = 1;
  for (let i = 0; size < n; i++) {
    const r = `{"id":${i},"name":"user-${i}","email":"user-${i}@example.com","active":${i % 3 === 0},"score":${(i * 37) % 1000},"tags":["alpha","beta"]},`;
    parts.push(r);
    size += r.length;
  }
  return parts.join("").slice(0, n);
}

// event is the i-th of a stream of similar JSON events, about 535 bytes
// each (above the server's compression threshold of 512): most of each
// is what the one before said. The same in every peer script.
function event(i) {
  return JSON.stringify({
    seq: i,
    temperature: (i * 37) % 100,
    status: "nominal",
    description: "The WebSocket Protocol enables two-way communication between a client running untrusted code in a controlled environment to a remote host that has opted-in to communications from that code. This document defines a framework for creating WebSocket extensions that add compression functionality to the WebSocket Protocol. An extension based on this framework compresses the payload data portion of WebSocket data messages on a per-message basis, using the DEFLATE algorithm.",
  });
}

const sha256 = (b) => createHash("sha256").update(b).digest("hex");

// wire asks the server how many bytes its connection has carried.
async function wire(ws) {
  ws.send("wire");
  const { data } = await next(ws);
  const m = /^wire (\d+) (\d+)$/.exec(data.toString());
  if (!m) throw new Error(`"wire" answered with ${JSON.stringify(data.toString().slice(0, 100))}`);
  return [Number(m[1]), Number(m[2])];
}

// measure echoes the messages (strings as text, Buffers as binary) one
// after the other and prints the bytes they cost on the wire each way.
async function measure(ws, label, messages) {
  const [up0, down0] = await wire(ws);
  let raw = 0;
  for (const msg of messages) {
    raw += Buffer.byteLength(msg);
    ws.send(msg);
    const { data, isBinary } = await next(ws);
    if (isBinary !== Buffer.isBuffer(msg) || data.length !== Buffer.byteLength(msg) || sha256(data) !== sha256(msg)) {
      throw new Error(`a ${Buffer.byteLength(msg)} B message came back as ${data.length} different bytes`);
    }
  }
  const [up1, down1] = await wire(ws);
  console.log(`wire ${label} raw=${raw} up=${up1 - up0} down=${down1 - down0}`);
}

// The server's MaxMessageSize: its default, 16 MiB.
const maxMessageSize = 16 << 20;

// limitChecks checks the server's message size limit, which applies to
// the message as delivered, not to its frames: random bytes deflate to
// more than they are, and a message of up to 16 MiB must come back
// whatever its frames add up to; one byte more is refused with 1009,
// random or repetitive. Each on a connection of its own, so that a
// refusal ends only its own check.
async function limitChecks() {
  const repetitive = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = i & 0xff;
    return b;
  };
  const echoAlone = async (payload) => {
    const c = await open();
    try {
      checkNegotiated(c);
      c.send(payload);
      const { data, isBinary } = await next(c, 60000);
      if (!isBinary) throw new Error("came back as text");
      if (data.length !== payload.length || sha256(payload) !== sha256(data)) throw new Error(`came back as ${data.length} different bytes`);
    } finally {
      c.close();
    }
  };
  const refused = async (payload) => {
    const c = await open();
    try {
      checkNegotiated(c);
      const done = closed(c, 60000);
      const got = next(c, 60000).then(({ data }) => { throw new Error(`a message of ${data.length} B came back instead of a close`); });
      got.catch(() => {}); // the close wins, or this does
      c.send(payload);
      const { code, reason } = await Promise.race([done, got]);
      if (code !== 1009) throw new Error(`close code ${code}, reason ${JSON.stringify(reason)}; want 1009`);
    } finally {
      c.terminate();
    }
  };
  const n = maxMessageSize;
  await check(`limit: random binary 16 MiB - 1 KiB (${n - 1024} B) echoed, SHA-256 compared`, () => echoAlone(randomBytes(n - 1024)));
  await check(`limit: random binary 16 MiB (${n} B) echoed, SHA-256 compared`, () => echoAlone(randomBytes(n)));
  await check(`limit: repetitive binary 16 MiB (${n} B) echoed, SHA-256 compared`, () => echoAlone(repetitive(n)));
  await check(`limit: random binary 16 MiB + 1 (${n + 1} B) refused with 1009`, () => refused(randomBytes(n + 1)));
  await check(`limit: repetitive binary 16 MiB + 1 (${n + 1} B) refused with 1009`, () => refused(repetitive(n + 1)));
}

// farRepeats is n bytes of text that repeat every 4 KiB, and hardly
// within that: a 4 KiB block of pseudo-random lowercase words, over and
// over. A compressor whose window reaches 4 KiB back shrinks it to about
// one block; one with a window of 1 KiB or less finds only the letters'
// entropy (some 60%). The same in every peer script.
function farRepeats(n) {
  let block = "";
  let x = 1;
  for (let i = 0; i < 4096; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    const c = (x >>> 16) % 27;
    block += c === 26 ? " " : String.fromCharCode(97 + c);
  }
  return block.repeat(Math.floor(n / 4096) + 1).slice(0, n);
}

// windowChecks checks windows smaller than 32 KiB (RFC 7692 §7.1.2): the
// client offers server_max_window_bits=serverBits and
// client_max_window_bits=clientBits, the server must answer both
// (client_max_window_bits only below 15) and compress with its window,
// which is all ws's zlib inflates with: a back-reference further would
// not inflate. Messages of a few kinds are echoed and measured on one
// connection, one after the other, so that context takeover (if the
// server's mode keeps it) reaches from one to the next within the
// windows.
async function windowChecks(serverBits, clientBits) {
  let ws;
  try {
    ws = await open("default", undefined, { server: serverBits, client: clientBits });
  } catch (err) {
    report(`connection offering server_max_window_bits=${serverBits} and client_max_window_bits=${clientBits}`, err.message || String(err));
    return;
  }
  ws.failOnClose = true; // a check after a failure fails at once
  await check(`handshake: server_max_window_bits=${serverBits} and client_max_window_bits=${clientBits} answered and applied`, () => {
    const answer = JSON.stringify(ws.answer);
    const ext = parseExtensions(ws.answer);
    if (ext.length !== 1 || ext[0].name !== "permessage-deflate") throw new Error(`answer ${answer}`);
    const want = { server_max_window_bits: String(serverBits) };
    if (clientBits < 15) want.client_max_window_bits = String(clientBits);
    if (mode !== "context-takeover") want.server_no_context_takeover = want.client_no_context_takeover = true;
    const got = ext[0].params;
    if (Object.keys(got).length !== Object.keys(want).length || Object.entries(want).some(([k, v]) => got[k] !== v)) {
      throw new Error(`answer ${answer}, want the parameters ${JSON.stringify(want)}`);
    }
    // What ws applies: its permessage-deflate's accepted parameters (ws
    // keeps them in a private field), whose window sizes its zlib
    // streams are made with.
    const params = ws._extensions?.["permessage-deflate"]?.params;
    if (!params || params.server_max_window_bits !== serverBits || params.client_max_window_bits !== clientBits) {
      throw new Error(`ws applied ${JSON.stringify(params)}`);
    }
  });
  await check("wire: 1 KiB of JSON", () => measure(ws, "json-1KiB", [jsonDoc(1 << 10)]));
  await check("wire: 100 KiB of text repeating every 4 KiB", () => measure(ws, "text-100KiB", [farRepeats(100 << 10)]));
  await check("wire: 1 MiB of random bytes", () => measure(ws, "random-1MiB", [randomBytes(1 << 20)]));
  await check("wire: 64 similar JSON events", () => measure(ws, "events", Array.from({ length: 64 }, (_, i) => event(i))));
  await check("client closes with 1000: clean, code echoed", async () => {
    if (ws.readyState === WebSocket.CLOSED) throw new Error("the connection is closed");
    const done = closed(ws);
    ws.close(1000, "bye");
    const { code } = await done;
    if (code !== 1000) throw new Error(`close code ${code}`);
  });
}

if (limit) {
  await limitChecks();
  process.exit(failures);
}

if (window) {
  await windowChecks(bits(rest[1]), bits(rest[2]));
  process.exit(failures);
}

const ws = await open();

await check("handshake: permessage-deflate as the server's mode says", () => checkNegotiated(ws));

for (const [name, text] of [
  ["echo text ascii", "hello, wsmachine"],
  ["echo text multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂"],
  ["echo text empty", ""],
  ["echo text 4 KiB multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂 · ".repeat(128)],
]) {
  await check(name, async () => {
    ws.send(text);
    const { data, isBinary } = await next(ws);
    if (isBinary) throw new Error("came back as binary");
    if (data.toString() !== text) throw new Error(`came back as ${JSON.stringify(data.toString().slice(0, 100))}`);
  });
}

// 16 MiB messages are slow for the server under the race detector, so
// they run once per mode that differs for them: binary uncompressed
// (off), and binary and text compressed (context-takeover);
// no-context-takeover compresses each message the same way, and goes up
// to 1 MiB.
const big = mode === "context-takeover" ? 16 << 20 : 1 << 20;
for (const size of [0, 1, 125, 126, 511, 512, 65535, 65536, 1 << 20].concat(mode !== "no-context-takeover" ? [16 << 20] : [])) {
  await check(`echo binary ${size} B`, async () => {
    const payload = pattern(size);
    ws.send(payload);
    const { data, isBinary } = await next(ws);
    if (!isBinary) throw new Error("came back as text");
    if (data.length !== size || sha256(payload) !== sha256(data)) throw new Error(`came back as ${data.length} different bytes`);
  });
}

await check(`echo text ${big >> 20} MiB JSON, SHA-256 compared`, async () => {
  const doc = jsonDoc(big);
  ws.send(doc);
  const { data, isBinary } = await next(ws, 60000);
  if (isBinary) throw new Error("came back as binary");
  if (data.length !== Buffer.byteLength(doc) || sha256(data) !== sha256(doc)) throw new Error(`came back as ${data.length} different bytes`);
});

// What messages cost on the wire: the Go test compares these.
await check("wire: 400 B of repetitive text (below the threshold)", () => measure(ws, "text-400", ["ab".repeat(200)]));
await check("wire: 600 B of repetitive text (above the threshold)", () => measure(ws, "text-600", ["ab".repeat(300)]));
await check("wire: 1 MiB of JSON", () => measure(ws, "json-1MiB", [jsonDoc(1 << 20)]));
const events = Array.from({ length: 64 }, (_, i) => event(i));
for (const kind of ["default", "client-no-takeover", "no-takeover"]) {
  await check(`wire: 64 similar JSON events, client asks for ${kind}`, async () => {
    const c = await open(kind);
    try {
      checkNegotiated(c);
      await measure(c, `events-${kind}`, events);
    } finally {
      c.close();
    }
  });
}

await check("ping answered with a pong", async () => {
  const pong = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no pong in 5 s")), 5000);
    ws.once("pong", (data) => {
      clearTimeout(timer);
      resolve(data.toString());
    });
  });
  ws.ping("are you there");
  const data = await pong;
  if (data !== "are you there") throw new Error(`pong carried ${JSON.stringify(data)}`);
});

await check("1,000 messages back-to-back, in order", async () => {
  const got = [];
  const all = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of 1000 echoes in 20 s`)), 20000);
    const onMessage = (data) => {
      got.push(data.toString());
      if (got.length === 1000) {
        clearTimeout(timer);
        ws.off("message", onMessage);
        resolve();
      }
    };
    ws.on("message", onMessage);
  });
  for (let i = 0; i < 1000; i++) ws.send(`message ${i}`);
  await all;
  for (let i = 0; i < 1000; i++) {
    if (got[i] !== `message ${i}`) throw new Error(`echo ${i} was ${JSON.stringify(got[i])}`);
  }
});

await check("client closes with 1000: clean, code echoed", async () => {
  const done = closed(ws);
  ws.close(1000, "bye");
  const { code } = await done;
  if (code !== 1000) throw new Error(`close code ${code}`);
});

await check("client closes with 4000 and a reason: code echoed", async () => {
  const c = await open();
  checkNegotiated(c);
  const done = closed(c);
  c.close(4000, "custom reason");
  const { code } = await done;
  if (code !== 4000) throw new Error(`close code ${code}`);
});

await check("server closes with 4001 and a reason", async () => {
  const c = await open();
  checkNegotiated(c);
  const done = closed(c);
  c.send("close 4001 server says bye");
  const { code, reason } = await done;
  if (code !== 4001 || reason !== "server says bye") throw new Error(`close code ${code}, reason ${JSON.stringify(reason)}`);
});

await check("server closes with 4002 after compressed messages both ways", async () => {
  const c = await open();
  checkNegotiated(c);
  for (let i = 0; i < 3; i++) {
    c.send(event(i));
    const { data } = await next(c);
    if (data.toString() !== event(i)) throw new Error(`event ${i} came back different`);
  }
  const done = closed(c);
  c.send("close 4002 compressed bye");
  const { code, reason } = await done;
  if (code !== 4002 || reason !== "compressed bye") throw new Error(`close code ${code}, reason ${JSON.stringify(reason)}`);
});

await check("subprotocol chosen by the server", async () => {
  const s = await open("default", ["unknown.example", "chat.wsmachine"]);
  const p = s.protocol;
  s.close();
  if (p !== "chat.wsmachine") throw new Error(`protocol ${JSON.stringify(p)}`);
});

process.exit(failures);
