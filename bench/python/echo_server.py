"""Echo server for the python matrix of bench/compare, written three ways as vmbench writes them:

  protocol   asyncio.Protocol: data_received -> transport.write
  streams    asyncio.start_server: reader.read(100 KiB) -> writer.write, drain
  sock       loop.sock_accept / sock_recv(100 KiB) / sock_sendall on non-blocking sockets

    /usr/bin/python3 bench/python/echo_server.py --loop ringlet|uvloop|asyncio --style protocol|streams|sock \\
        --port PORT [--ringlet-path build/release/python] [--backend auto|uring|epoll] [--workers N]

--workers N (ringlet only) runs it with ringlet.run(main, workers=N, pin=True): N processes sharing the port
through SO_REUSEPORT, worker i pinned to the i-th CPU the server may use. Listens on 127.0.0.1, sets TCP_NODELAY on accepted sockets, exits 0 on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import socket

import loops

READ_SIZE = 102400  # vmbench's read size: one 100 KiB message fits one read when the socket holds it


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def protocol_server(port, reuse_port=None):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024, reuse_port=reuse_port)
    async with server:
        await server.serve_forever()


async def echo_stream(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def streams_server(port, reuse_port=None):
    server = await asyncio.start_server(echo_stream, "127.0.0.1", port, backlog=1024, reuse_port=reuse_port)
    async with server:
        await server.serve_forever()


async def echo_socket(loop, client):
    try:
        while True:
            data = await loop.sock_recv(client, READ_SIZE)
            if not data:
                break
            await loop.sock_sendall(client, data)
    except ConnectionError:
        pass
    finally:
        client.close()


async def sock_server(port, reuse_port=None):
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    clients = set()
    try:
        while True:
            client, _ = await loop.sock_accept(listener)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            task = loop.create_task(echo_socket(loop, client))
            clients.add(task)
            task.add_done_callback(clients.discard)
    finally:
        listener.close()
        for task in clients:
            task.cancel()


STYLES = {"protocol": protocol_server, "streams": streams_server, "sock": sock_server}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", required=True, choices=loops.NAMES)
    parser.add_argument("--style", required=True, choices=sorted(STYLES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, help="ringlet only: this many processes (ringlet.run workers=N)")
    loops.add_arguments(parser)
    args = parser.parse_args()
    if args.workers:
        if args.loop != "ringlet":
            raise SystemExit("--workers needs --loop ringlet")
        loops.factory("ringlet", args)  # puts the package on the path
        import ringlet
        ringlet.run(lambda: STYLES[args.style](args.port, reuse_port=True), workers=args.workers, pin=True,
                    backend=args.backend)
        return
    loops.serve(args.loop, args, lambda: STYLES[args.style](args.port))


if __name__ == "__main__":
    main()
