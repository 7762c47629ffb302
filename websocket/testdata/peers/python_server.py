"""Python's websockets server for the wsmachine client.

Run with Debian's python3 and python3-websockets (10.x, the asyncio API):
python3 python_server.py [--deflate] [--tls CERT KEY]

Listens on 127.0.0.1, on a port of the system's choice, which it prints
first as "port <n>". It echoes every message, except two text commands:
"close <code> <reason>" closes with that code and reason, and
"ping <data>" sends a ping with data and, when the pong comes, the text
"pong <data>". When a connection ends it prints
"closed <path> <code> <reason>", with the code and reason of the client's
close frame. --deflate offers permessage-deflate (websockets' defaults);
--tls serves wss:// with the PEM certificate and key. It exits when its
standard input ends.
"""

import asyncio
import ssl
import sys

import websockets


async def handler(ws):
    path = ws.path
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close "):
                code, _, reason = msg[len("close "):].partition(" ")
                await ws.close(int(code), reason)
                break
            if isinstance(msg, str) and msg.startswith("ping "):
                data = msg[len("ping "):]
                pong = await ws.ping(data)
                await asyncio.wait_for(pong, 10)
                await ws.send("pong " + data)
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    except Exception as err:  # reported, so that the test sees it
        print(f"error {path} {err!r}", flush=True)
    await ws.wait_closed()
    print(f"closed {path} {ws.close_code} {ws.close_reason}", flush=True)


async def main():
    args = sys.argv[1:]
    context = None
    if "--tls" in args:
        i = args.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args[i + 1], args[i + 2])
    server = await websockets.serve(
        handler,
        "127.0.0.1",
        0,
        ssl=context,
        compression="deflate" if "--deflate" in args else None,
        max_size=None,
        ping_interval=None,
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()


asyncio.run(main())
