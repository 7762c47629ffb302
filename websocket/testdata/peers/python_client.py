"""Python's websockets client against a wsmachine echo server.

Run with Debian's python3 and python3-websockets (10.4, whose connect()
is the legacy asyncio client):

    python3 python_client.py MODE URL [limit | window SERVER_BITS CLIENT_BITS]

MODE is the server's compression: off, no-context-takeover or
context-takeover. With "limit", only the checks of the server's message
size limit (16 MiB, its default) run instead: see limit(). With "window",
only the checks of windows smaller than 32 KiB run instead, the client
offering server_max_window_bits=SERVER_BITS and
client_max_window_bits=CLIENT_BITS (8-15): see window(). The server at
URL echoes every message, answers a text message "close <code> <reason>"
by closing with that code and reason, answers "wire" with "wire <up>
<down>", the bytes its TCP connection has carried from and to the client
so far, and closes with the client's code when the client closes. Every
check prints one line, "ok <check>" or "FAIL <check>: <why>"; every
measurement a line "wire <label> raw=<bytes> up=<bytes> down=<bytes>",
which the Go test judges. The exit code is the number of failures.
"""

import asyncio
import hashlib
import json
import os
import re
import sys
import time

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

MODES = ("off", "no-context-takeover", "context-takeover")
BITS = [str(bits) for bits in range(8, 16)]
if (
    len(sys.argv) < 3
    or sys.argv[1] not in MODES
    or not (
        sys.argv[3:] in ([], ["limit"])
        or len(sys.argv) == 6 and sys.argv[3] == "window" and sys.argv[4] in BITS and sys.argv[5] in BITS
    )
):
    sys.exit(
        "usage: python3 python_client.py off|no-context-takeover|context-takeover URL "
        "[limit | window SERVER_BITS CLIENT_BITS]"
    )
MODE, URL = sys.argv[1:3]
LIMIT = sys.argv[3:] == ["limit"]
WINDOW = sys.argv[3:4] == ["window"]
COMPRESSED = MODE != "off"
failures = 0


def report(name, err=None):
    global failures
    if err is None:
        print(f"ok {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL {name}: {err}", flush=True)


async def check(name, coro, timeout=30):
    start = time.monotonic()
    try:
        await asyncio.wait_for(coro, timeout)
        report(f"{name} ({round((time.monotonic() - start) * 1000)} ms)")
    except Exception as err:  # every failure is reported, none stops the run
        report(name, repr(err))


def connect(kind="default", server_bits=None, client_bits=True, **kwargs):
    """Connects, offering permessage-deflate (websockets compresses every
    message once it is negotiated). kind says what the client asks for:
    "default" nothing (context takeover both ways), "client-no-takeover"
    client_no_context_takeover, "no-takeover" that and
    server_no_context_takeover. server_bits, if given, is offered as
    server_max_window_bits; client_bits as client_max_window_bits (True,
    websockets' default, offers it without a value)."""
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=kind == "no-takeover",
        client_no_context_takeover=kind != "default",
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        compress_settings={"memLevel": 5},  # what compression="deflate" uses
    )
    return websockets.connect(URL, extensions=[factory], max_size=None, **kwargs)


def parse_extensions(header):
    """Parses a Sec-WebSocket-Extensions value into [(name, {param: value
    or True})]."""
    out = []
    for element in header.split(","):
        if not element.strip():
            continue
        name, *params = [s.strip() for s in element.split(";")]
        kv = {}
        for p in params:
            k, eq, v = p.partition("=")
            kv[k.strip()] = v.strip() if eq else True
        out.append((name, kv))
    return out


def check_negotiated(ws, kind="default"):
    """Checks the client's view of the handshake: what the server answered,
    and that websockets enabled permessage-deflate as answered."""
    answer = ws.response_headers.get("Sec-WebSocket-Extensions", "")
    extensions = ws.extensions  # as websockets applies them
    if not COMPRESSED:
        if answer or extensions:
            raise AssertionError(f"answer {answer!r}, extensions {extensions}")
        return
    want = {
        "server_no_context_takeover": MODE == "no-context-takeover" or kind == "no-takeover",
        "client_no_context_takeover": MODE == "no-context-takeover" or kind != "default",
    }
    ext = parse_extensions(answer)
    if len(ext) != 1 or ext[0][0] != "permessage-deflate":
        raise AssertionError(f"answer {answer!r}")
    for param in ext[0][1]:
        if param not in want:
            raise AssertionError(f"unexpected {param} in answer {answer!r}")
    for param, value in want.items():
        if (ext[0][1].get(param) is True) != value:
            raise AssertionError(f"{param} {not value}, want {value}: answer {answer!r}")
    if len(extensions) != 1 or extensions[0].name != "permessage-deflate":
        raise AssertionError(f"extensions {extensions}")
    pmd = extensions[0]
    if (pmd.remote_no_context_takeover, pmd.local_no_context_takeover) != (
        want["server_no_context_takeover"],
        want["client_no_context_takeover"],
    ):
        raise AssertionError(f"{pmd}, want {want}")


def pattern(n):
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n))


def json_doc(n):
    """n bytes of JSON-like text that compresses well, as a page of API
    results does. The same in every peer script."""
    parts, size, i = ["["], 1, 0
    while size < n:
        r = (
            f'{{"id":{i},"name":"user-{i}","email":"user-{i}@example.com",'
            f'"active":{"true" if i % 3 == 0 else "false"},"score":{i * 37 % 1000},"tags":["alpha","beta"]}},'
        )
        parts.append(r)
        size += len(r)
        i += 1
    return "".join(parts)[:n]


DESCRIPTION = (
    "The WebSocket Protocol enables two-way communication between a client running untrusted code "
    "in a controlled environment to a remote host that has opted-in to communications from that code. "
    "This document defines a framework for creating WebSocket extensions that add compression "
    "functionality to the WebSocket Protocol. An extension based on this framework compresses the "
    "payload data portion of WebSocket data messages on a per-message basis, using the DEFLATE algorithm."
)


def event(i):
    """The i-th of a stream of similar JSON events, about 535 bytes each
    (above the server's compression threshold of 512): most of each is
    what the one before said. The same in every peer script."""
    return json.dumps(
        {"seq": i, "temperature": i * 37 % 100, "status": "nominal", "description": DESCRIPTION},
        separators=(",", ":"),
    )


def sha256(m):
    return hashlib.sha256(m.encode() if isinstance(m, str) else m).hexdigest()


async def echo(ws, message):
    await ws.send(message)
    got = await ws.recv()
    if type(got) is not type(message):
        raise AssertionError(f"sent {type(message).__name__}, got {type(got).__name__}")
    if len(got) != len(message) or sha256(got) != sha256(message):
        raise AssertionError(f"came back different ({len(got)} of {len(message)})")


async def wire(ws):
    """Asks the server how many bytes its connection has carried."""
    await ws.send("wire")
    got = await ws.recv()
    m = re.fullmatch(r"wire (\d+) (\d+)", got) if isinstance(got, str) else None
    if not m:
        raise AssertionError(f'"wire" answered with {got[:100]!r}')
    return int(m[1]), int(m[2])


async def measure(ws, label, messages):
    """Echoes the messages one after the other and prints the bytes they
    cost on the wire each way."""
    up0, down0 = await wire(ws)
    for m in messages:
        await echo(ws, m)
    up1, down1 = await wire(ws)
    raw = sum(len(m.encode() if isinstance(m, str) else m) for m in messages)
    print(f"wire {label} raw={raw} up={up1 - up0} down={down1 - down0}", flush=True)


async def main():
    async with connect() as ws:

        async def negotiated():
            check_negotiated(ws)

        await check("handshake: permessage-deflate as the server's mode says", negotiated())
        for name, text in [
            ("echo text ascii", "hello, wsmachine"),
            ("echo text multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂"),
            ("echo text empty", ""),
            ("echo text 4 KiB multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂 · " * 128),
        ]:
            await check(name, echo(ws, text))
        # 16 MiB messages are slow for the server under the race detector,
        # so they run once per mode that differs for them: binary
        # uncompressed (off), and binary and text compressed
        # (context-takeover); no-context-takeover compresses each message
        # the same way, and goes up to 1 MiB.
        sizes = [0, 1, 125, 126, 511, 512, 65535, 65536, 1 << 20]
        if MODE != "no-context-takeover":
            sizes.append(16 << 20)
        for size in sizes:
            await check(f"echo binary {size} B", echo(ws, pattern(size)))
        big = 16 << 20 if MODE == "context-takeover" else 1 << 20
        await check(f"echo text {big >> 20} MiB JSON, SHA-256 compared", echo(ws, json_doc(big)), 60)

        # What messages cost on the wire: the Go test compares these.
        await check("wire: 400 B of repetitive text (below the threshold)", measure(ws, "text-400", ["ab" * 200]))
        await check("wire: 600 B of repetitive text (above the threshold)", measure(ws, "text-600", ["ab" * 300]))
        await check("wire: 1 MiB of JSON", measure(ws, "json-1MiB", [json_doc(1 << 20)]))
        events = [event(i) for i in range(64)]
        for kind in ("default", "client-no-takeover", "no-takeover"):

            async def events_for(kind=kind):
                async with connect(kind) as c:
                    check_negotiated(c, kind)
                    await measure(c, f"events-{kind}", events)

            await check(f"wire: 64 similar JSON events, client asks for {kind}", events_for())

        async def ping():
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)

        await check("ping answered with a pong", ping())

        async def in_order():
            for i in range(1000):
                await ws.send(f"message {i}")
            for i in range(1000):
                got = await ws.recv()
                if got != f"message {i}":
                    raise AssertionError(f"echo {i} was {got!r}")

        await check("1,000 messages back-to-back, in order", in_order())

        async def close_1000():
            await ws.close(1000, "bye")
            if ws.close_code != 1000:
                raise AssertionError(f"close code {ws.close_code}")

        await check("client closes with 1000: clean, code echoed", close_1000())

    async def close_4000():
        async with connect() as c:
            check_negotiated(c)
            await c.close(4000, "custom reason")
            if c.close_code != 4000:
                raise AssertionError(f"close code {c.close_code}")

    await check("client closes with 4000 and a reason: code echoed", close_4000())

    async def server_closes(code, reason, before=()):
        async with connect() as c:
            check_negotiated(c)
            for m in before:
                await echo(c, m)
            await c.send(f"close {code} {reason}")
            try:
                await c.recv()
                raise AssertionError("a message came instead of the close")
            except websockets.ConnectionClosed:  # ...Error for codes other than 1000, 1001
                pass
            if c.close_code != code or c.close_reason != reason:
                raise AssertionError(f"close code {c.close_code}, reason {c.close_reason!r}")

    await check("server closes with 4001 and a reason", server_closes(4001, "server says bye"))
    await check(
        "server closes with 4002 after compressed messages both ways",
        server_closes(4002, "compressed bye", [event(i) for i in range(3)]),
    )

    async def subprotocol():
        async with connect(subprotocols=["unknown.example", "chat.wsmachine"]) as c:
            if c.subprotocol != "chat.wsmachine":
                raise AssertionError(f"protocol {c.subprotocol!r}")

    await check("subprotocol chosen by the server", subprotocol())


# The server's MaxMessageSize: its default, 16 MiB.
MAX_MESSAGE_SIZE = 16 << 20


def repetitive(n):
    """n bytes that compress to almost nothing."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


async def limit():
    """The server's message size limit, which applies to the message as
    delivered, not to its frames: random bytes deflate to more than they
    are (websockets' zlib, at memLevel 5, stores them in blocks of about
    2 KiB with 5 bytes of header each), and a message of up to 16 MiB
    must come back whatever its frames add up to; one byte more is
    refused with 1009, random or repetitive. Each on a connection of its
    own, so that a refusal ends only its own check."""

    async def echo_alone(message):
        async with connect() as c:
            check_negotiated(c)
            await echo(c, message)

    async def refused(message):
        async with connect() as c:
            check_negotiated(c)
            try:
                await c.send(message)
                got = await c.recv()
                raise AssertionError(f"a message of {len(got)} B came back instead of a close")
            except websockets.ConnectionClosed:  # from send or recv, whichever saw the close first
                pass
            if c.close_code != 1009:
                raise AssertionError(f"close code {c.close_code}, reason {c.close_reason!r}; want 1009")

    n = MAX_MESSAGE_SIZE
    for name, run, message in [  # each message made when its check runs
        (f"random binary 16 MiB - 1 KiB ({n - 1024} B) echoed, SHA-256 compared", echo_alone, lambda: os.urandom(n - 1024)),
        (f"random binary 16 MiB ({n} B) echoed, SHA-256 compared", echo_alone, lambda: os.urandom(n)),
        (f"repetitive binary 16 MiB ({n} B) echoed, SHA-256 compared", echo_alone, lambda: repetitive(n)),
        (f"random binary 16 MiB + 1 ({n + 1} B) refused with 1009", refused, lambda: os.urandom(n + 1)),
        (f"repetitive binary 16 MiB + 1 ({n + 1} B) refused with 1009", refused, lambda: repetitive(n + 1)),
    ]:
        await check(f"limit: {name}", run(message()), 60)


def far_repeats(n):
    """n bytes of text that repeat every 4 KiB, and hardly within that: a
    4 KiB block of pseudo-random lowercase words, over and over. A
    compressor whose window reaches 4 KiB back shrinks it to about one
    block; one with a window of 1 KiB or less finds only the letters'
    entropy (some 60%). The same in every peer script."""
    block, x = [], 1
    for _ in range(4096):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        c = (x >> 16) % 27
        block.append(" " if c == 26 else chr(97 + c))
    return ("".join(block) * (n // 4096 + 1))[:n]


async def window(server_bits, client_bits):
    """Windows smaller than 32 KiB (RFC 7692 §7.1.2): the client offers
    server_max_window_bits=server_bits and client_max_window_bits=client_bits,
    the server must answer both (client_max_window_bits only below 15)
    and compress with its window, which is all websockets' zlib inflates
    with: a back-reference further would not inflate. Messages of a few
    kinds are echoed and measured on one connection, one after the other,
    so that context takeover (if the server's mode keeps it) reaches
    from one to the next within the windows."""
    async with connect(server_bits=server_bits, client_bits=client_bits) as ws:

        async def negotiated():
            answer = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            ext = parse_extensions(answer)
            if len(ext) != 1 or ext[0][0] != "permessage-deflate":
                raise AssertionError(f"answer {answer!r}")
            takeover = MODE == "context-takeover"
            want = {"server_max_window_bits": str(server_bits)}
            if client_bits < 15:
                want["client_max_window_bits"] = str(client_bits)
            if not takeover:
                want["server_no_context_takeover"] = want["client_no_context_takeover"] = True
            if ext[0][1] != want:
                raise AssertionError(f"answer {answer!r}, want the parameters {want}")
            pmd = ws.extensions[0] if len(ws.extensions) == 1 else None
            if pmd is None or pmd.name != "permessage-deflate":
                raise AssertionError(f"extensions {ws.extensions}")
            if (pmd.remote_max_window_bits, pmd.local_max_window_bits) != (server_bits, client_bits) or (
                pmd.remote_no_context_takeover,
                pmd.local_no_context_takeover,
            ) != (not takeover, not takeover):
                raise AssertionError(f"{pmd}: not what was answered")

        await check(
            f"handshake: server_max_window_bits={server_bits} and client_max_window_bits={client_bits} "
            "answered and applied",
            negotiated(),
        )
        await check("wire: 1 KiB of JSON", measure(ws, "json-1KiB", [json_doc(1 << 10)]))
        await check(
            "wire: 100 KiB of text repeating every 4 KiB",
            measure(ws, "text-100KiB", [far_repeats(100 << 10)]),
        )
        await check("wire: 1 MiB of random bytes", measure(ws, "random-1MiB", [os.urandom(1 << 20)]), 60)
        await check("wire: 64 similar JSON events", measure(ws, "events", [event(i) for i in range(64)]))

        async def close_1000():
            await ws.close(1000, "bye")
            if ws.close_code != 1000:
                raise AssertionError(f"close code {ws.close_code}")

        await check("client closes with 1000: clean, code echoed", close_1000())


if LIMIT:
    asyncio.run(limit())
elif WINDOW:
    try:
        asyncio.run(window(int(sys.argv[4]), int(sys.argv[5])))
    except Exception as err:  # the connection failed: reported as a check
        report(f"connection offering server_max_window_bits={sys.argv[4]} and client_max_window_bits={sys.argv[5]}", repr(err))
else:
    asyncio.run(main())
sys.exit(failures)
