"""HTTP/1.1 hello-world servers for the python matrix of bench/compare, two ways:

  httptools  an asyncio.Protocol feeding httptools' parser (python3-httptools), answering each request as its
             message completes: the way uvloop's own HTTP benchmark (vmbench) is written
  aiohttp    aiohttp's web application (python3-aiohttp) with one handler returning web.Response(text=...)

Every path answers 200 "Hello, World!" with keep-alive; pipelined requests are answered in order.

    /usr/bin/python3 bench/python/http_server.py --loop ringlet|uvloop|asyncio --app httptools|aiohttp \\
        --port PORT [--ringlet-path build/release/python] [--backend auto|uring|epoll]

Listens on 127.0.0.1, sets TCP_NODELAY on accepted sockets, exits 0 on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import socket

import loops

BODY = b"Hello, World!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
CLOSE_RESPONSE = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


class HttpProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        import httptools

        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.transport.close()

    def on_message_complete(self):
        if self.parser.should_keep_alive():
            self.transport.write(RESPONSE)
        else:
            self.transport.write(CLOSE_RESPONSE)
            self.transport.close()


async def httptools_server(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


async def aiohttp_server(port):
    from aiohttp import web

    async def hello(request):
        return web.Response(text="Hello, World!")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


APPS = {"httptools": httptools_server, "aiohttp": aiohttp_server}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", required=True, choices=loops.NAMES)
    parser.add_argument("--app", required=True, choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    loops.add_arguments(parser)
    args = parser.parse_args()
    loops.serve(args.loop, args, lambda: APPS[args.app](args.port))


if __name__ == "__main__":
    main()
