#!/usr/bin/env python3
"""A TCP relay that counts the HTTP requests and bytes passing through it.

    count_relay.py --target 127.0.0.1:9000 [--listen 127.0.0.1:0] [--control 127.0.0.1:0]

Sits between a proxy under test and its origin (mediagate -> relay -> s3s-fs,
or nginx proxy_cache -> relay -> nginx static) so that "how many requests did
the origin see" is counted outside the proxy, not taken from its own figures.

Counting: every request head (request line + headers up to the blank line)
sent towards the target is one request; a request body, if any, is skipped by
its Content-Length (the proxies under test only send GET and HEAD). Bytes are
counted in both directions as relayed (response bytes include headers: a few
hundred bytes per response).

On start it prints one line on stdout:
    relay listening on 127.0.0.1:<port> control on 127.0.0.1:<port>
The control listener answers `GET /stats` (JSON) and `POST /reset` (zeroes
the counters, returns the stats before the reset).
"""

import argparse
import asyncio
import json
import sys
import time

MAX_LOG = 2000


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.connections = 0
        self.requests = 0
        self.by_method = {}
        self.bytes_to_target = 0
        self.bytes_from_target = 0
        self.log = []  # [t, method, target, range] of the first MAX_LOG requests
        self.since = time.time()

    def snapshot(self):
        return {
            "connections": self.connections,
            "requests": self.requests,
            "by_method": dict(self.by_method),
            "bytes_to_target": self.bytes_to_target,
            "bytes_from_target": self.bytes_from_target,
            "since": self.since,
            "log": list(self.log),
        }


STATS = Stats()


class RequestCounter:
    """Finds request heads in the byte stream a client sends to the target."""

    def __init__(self):
        self.buf = bytearray()
        self.skip = 0  # body bytes of the current request still to pass

    def feed(self, data):
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 1 << 20:  # not HTTP: stop looking
                    self.buf.clear()
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            method = parts[0] if parts else "?"
            target = parts[1] if len(parts) > 1 else ""
            rng, length = "", 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "range":
                    rng = value.strip()
                elif name == "content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        length = 0
            STATS.requests += 1
            STATS.by_method[method] = STATS.by_method.get(method, 0) + 1
            if len(STATS.log) < MAX_LOG:
                STATS.log.append([round(time.time() - STATS.since, 6), method, target, rng])
            if length:
                n = min(length, len(self.buf))
                del self.buf[:n]
                self.skip = length - n


async def pipe(reader, writer, on_data):
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            on_data(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle_client(client_reader, client_writer, target_host, target_port):
    try:
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
    except OSError:
        client_writer.close()
        return
    STATS.connections += 1
    counter = RequestCounter()

    def to_target(data):
        STATS.bytes_to_target += len(data)
        counter.feed(data)

    def from_target(data):
        STATS.bytes_from_target += len(data)

    await asyncio.gather(
        pipe(client_reader, up_writer, to_target),
        pipe(up_reader, client_writer, from_target),
    )


async def handle_control(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        path = rest.split(" ")[0]
        if path == "/stats":
            body, status = json.dumps(STATS.snapshot()), "200 OK"
        elif path == "/reset" and method == "POST":
            body, status = json.dumps(STATS.snapshot()), "200 OK"
            STATS.reset()
        else:
            body, status = '{"error": "GET /stats or POST /reset"}', "404 Not Found"
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, type=host_port, help="host:port of the origin")
    ap.add_argument("--listen", default="127.0.0.1:0", type=host_port)
    ap.add_argument("--control", default="127.0.0.1:0", type=host_port)
    args = ap.parse_args()
    th, tp = args.target
    relay = await asyncio.start_server(lambda r, w: handle_client(r, w, th, tp), *args.listen)
    control = await asyncio.start_server(handle_control, *args.control)
    rp = relay.sockets[0].getsockname()[1]
    cp = control.sockets[0].getsockname()[1]
    print(f"relay listening on {args.listen[0]}:{rp} control on {args.control[0]}:{cp}", flush=True)
    async with relay, control:
        await asyncio.gather(relay.serve_forever(), control.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
