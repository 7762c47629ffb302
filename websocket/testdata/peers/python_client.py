"""Python's websockets client against a wsmachine echo server.

Run with Debian's python3 and python3-websockets: python3 python_client.py URL

The server at URL echoes every message, answers a text message
"close <code> <reason>" by closing with that code and reason, and closes
with the client's code when the client closes. Every check prints one line,
"ok <check>" or "FAIL <check>: <why>"; the exit code is the number of
failures.
"""

import asyncio
import sys

import websockets

URL = sys.argv[1]
failures = 0


def report(name, err=None):
    global failures
    if err is None:
        print(f"ok {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL {name}: {err}", flush=True)


async def check(name, coro):
    try:
        await asyncio.wait_for(coro, 30)
        report(name)
    except Exception as err:  # every failure is reported, none stops the run
        report(name, repr(err))


def pattern(n):
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n))


async def echo(ws, message):
    await ws.send(message)
    got = await ws.recv()
    if type(got) is not type(message):
        raise AssertionError(f"sent {type(message).__name__}, got {type(got).__name__}")
    if got != message:
        raise AssertionError(f"came back different ({len(got)} of {len(message)})")


async def main():
    async with websockets.connect(URL, max_size=None, compression=None) as ws:
        for name, text in [
            ("echo text ascii", "hello, wsmachine"),
            ("echo text multi-byte UTF-8", "κόσμε · 日本語 · 𝄞 · 🙂"),
            ("echo text empty", ""),
        ]:
            await check(name, echo(ws, text))
        for size in [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]:
            await check(f"echo binary {size} B", echo(ws, pattern(size)))

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
        async with websockets.connect(URL) as c:
            await c.close(4000, "custom reason")
            if c.close_code != 4000:
                raise AssertionError(f"close code {c.close_code}")

    await check("client closes with 4000 and a reason: code echoed", close_4000())

    async def server_closes():
        async with websockets.connect(URL) as c:
            await c.send("close 4001 server says bye")
            try:
                await c.recv()
                raise AssertionError("a message came instead of the close")
            except websockets.ConnectionClosed:  # ...Error for codes other than 1000, 1001
                pass
            if c.close_code != 4001 or c.close_reason != "server says bye":
                raise AssertionError(f"close code {c.close_code}, reason {c.close_reason!r}")

    await check("server closes with 4001 and a reason", server_closes())

    async def subprotocol():
        async with websockets.connect(URL, subprotocols=["unknown.example", "chat.wsmachine"]) as c:
            if c.subprotocol != "chat.wsmachine":
                raise AssertionError(f"protocol {c.subprotocol!r}")

    await check("subprotocol chosen by the server", subprotocol())


asyncio.run(main())
sys.exit(failures)
