"""Python's websockets clients for the broadcast and ping tests
(websocket/broadcast_interop_test.go).

Run with Debian's python3 and python3-websockets (10.4, whose connect()
is the legacy asyncio client):

    python3 python_broadcast.py echo|quiet URL SPEC...

Opens one connection per SPEC to URL?peer=python-<i>: "default" makes
websockets' default offer ("permessage-deflate; client_max_window_bits"),
"w<N>" (N 9-15) also offers server_max_window_bits=N. With "echo", a
connection answers every data message with a text message "got <k>
<text|binary> <length> <sha256 hex>" (k counts the messages from 0) and
then with the message itself, of the same type; with "quiet" it sends
nothing (no keepalive pings either; websockets answers pings on its
own). Prints, per connection, "ext <id> <the server's
Sec-WebSocket-Extensions answer>" and "applied <id> <the extensions
websockets uses>" once open, "closed <id> <code>" once the server has
closed it, and "FAIL <id>: <why>" on an error. The exit code is the
number of failures, 100 if some connection is still open after 90 s.
"""

import asyncio
import hashlib
import re
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

if (
    len(sys.argv) < 4
    or sys.argv[1] not in ("echo", "quiet")
    or not all(re.fullmatch(r"default|w(9|1[0-5])", s) for s in sys.argv[3:])
):
    sys.exit("usage: python3 python_broadcast.py echo|quiet URL default|w<9-15>...")
HOW, URL, SPECS = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = 0


def fail(ident, why):
    global failures
    failures += 1
    print(f"FAIL {ident}: {why}", flush=True)


async def run(i, spec):
    ident = f"python-{i}"
    kwargs = {}
    if spec != "default":
        kwargs["extensions"] = [
            ClientPerMessageDeflateFactory(
                server_max_window_bits=int(spec[1:]),
                client_max_window_bits=True,
                compress_settings={"memLevel": 5},  # what compression="deflate" uses
            )
        ]
    try:
        async with websockets.connect(
            f"{URL}?peer={ident}", max_size=None, ping_interval=None, **kwargs
        ) as ws:
            answer = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            print(f"ext {ident} {answer}", flush=True)
            print(f"applied {ident} {','.join(e.name for e in ws.extensions)}", flush=True)
            if HOW == "quiet":
                await ws.wait_closed()
            else:
                k = 0
                async for msg in ws:  # ends when the server closes normally
                    data = msg.encode() if isinstance(msg, str) else msg
                    kind = "text" if isinstance(msg, str) else "binary"
                    await ws.send(f"got {k} {kind} {len(data)} {hashlib.sha256(data).hexdigest()}")
                    await ws.send(msg)
                    k += 1
        print(f"closed {ident} {ws.close_code}", flush=True)
    except Exception as err:  # every failure is reported
        fail(ident, repr(err))


async def main():
    try:
        await asyncio.wait_for(asyncio.gather(*(run(i, s) for i, s in enumerate(SPECS))), 90)
    except asyncio.TimeoutError:
        print("FAIL python: some connection still open after 90 s", flush=True)
        sys.exit(100)


asyncio.run(main())
sys.exit(failures)
