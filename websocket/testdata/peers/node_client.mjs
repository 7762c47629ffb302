// Node's ws client against a wsmachine echo server: node node_client.mjs URL
//
// The server at URL echoes every message, answers a text message
// "close <code> <reason>" by closing with that code and reason, and closes
// with the client's code when the client closes. Every check prints one
// line, "ok <check>" or "FAIL <check>: <why>"; the exit code is the number
// of failures.
import WebSocket from "ws";

const url = process.argv[2];
let failures = 0;

function report(name, err) {
  if (err) {
    failures++;
    console.log(`FAIL ${name}: ${err}`);
  } else {
    console.log(`ok ${name}`);
  }
}

function open(options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.binaryType = "nodebuffer";
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// next resolves with the next message, or rejects after ms.
function next(ws, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message in ${ms} ms`)), ms);
    ws.once("message", (data, isBinary) => {
      clearTimeout(timer);
      resolve({ data, isBinary });
    });
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
  try {
    await fn();
    report(name);
  } catch (err) {
    report(name, err.message || String(err));
  }
}

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

const ws = await open();

for (const [name, text] of [
  ["echo text ascii", "hello, wsmachine"],
  ["echo text multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂"],
  ["echo text empty", ""],
]) {
  await check(name, async () => {
    ws.send(text);
    const { data, isBinary } = await next(ws);
    if (isBinary) throw new Error("came back as binary");
    if (data.toString() !== text) throw new Error(`came back as ${JSON.stringify(data.toString())}`);
  });
}

for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]) {
  await check(`echo binary ${size} B`, async () => {
    const payload = pattern(size);
    ws.send(payload);
    const { data, isBinary } = await next(ws);
    if (!isBinary) throw new Error("came back as text");
    if (!payload.equals(data)) throw new Error(`came back as ${data.length} different bytes`);
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
  const done = closed(c);
  c.close(4000, "custom reason");
  const { code } = await done;
  if (code !== 4000) throw new Error(`close code ${code}`);
});

await check("server closes with 4001 and a reason", async () => {
  const c = await open();
  const done = closed(c);
  c.send("close 4001 server says bye");
  const { code, reason } = await done;
  if (code !== 4001 || reason !== "server says bye") throw new Error(`close code ${code}, reason ${JSON.stringify(reason)}`);
});

await check("subprotocol chosen by the server", async () => {
  const c = await open(undefined);
  c.close();
  const p = await new Promise((resolve, reject) => {
    const s = new WebSocket(url, ["unknown.example", "chat.wsmachine"]);
    s.once("open", () => {
      resolve(s.protocol);
      s.close();
    });
    s.once("error", reject);
  });
  if (p !== "chat.wsmachine") throw new Error(`protocol ${JSON.stringify(p)}`);
});

process.exit(failures);
