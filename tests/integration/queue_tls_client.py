#!/usr/bin/python3
# A TLS-wrapped beanstalk client for queue_server_test.cpp, on Python's ssl module (the standard library only).
# usage: queue_tls_client.py HOST PORT CA_FILE MODE [CERT KEY]
#   MODE jobs:    puts a small job and a 60,000-byte one (many TLS records' worth with the reply), reserves and
#                 deletes both with exact bytes checked, then quits; prints "tls: ok".
#   MODE refused: expects the server to refuse the handshake (no or a foreign client certificate): no reply to
#                 a command may ever arrive; prints "refused: ok".
import socket
import ssl
import sys


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_line(sock):
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError("closed mid-line: %r" % line)
        line += chunk
    return line


def expect(sock, request, reply):
    sock.sendall(request)
    got = read_exactly(sock, len(reply))
    if got != reply:
        raise AssertionError("sent %r, expected %r, got %r" % (request[:60], reply[:60], got[:60]))


def put(sock, head, body):
    sock.sendall(head + body + b"\r\n")
    line = read_line(sock)
    if not line.startswith(b"INSERTED "):
        raise AssertionError("put answered %r" % line)
    return int(line[9:-2])


def jobs(sock):
    expect(sock, b"use tls\r\n", b"USING tls\r\n")
    expect(sock, b"watch tls\r\n", b"WATCHING 2\r\n")
    expect(sock, b"ignore default\r\n", b"WATCHING 1\r\n")
    small = put(sock, b"put 1 0 60 5\r\n", b"hello")
    body = bytes((i * 7919 + 13) % 256 for i in range(60000))
    big = put(sock, b"put 2 0 60 60000\r\n", body)
    expect(sock, b"reserve-with-timeout 0\r\n", b"RESERVED %d 5\r\nhello\r\n" % small)
    sock.sendall(b"reserve-with-timeout 0\r\n")
    head = read_line(sock)
    if head != b"RESERVED %d 60000\r\n" % big:
        raise AssertionError("unexpected %r" % head)
    if read_exactly(sock, 60002) != body + b"\r\n":
        raise AssertionError("the big body came back changed")
    expect(sock, b"delete %d\r\n" % small, b"DELETED\r\n")
    expect(sock, b"delete %d\r\n" % big, b"DELETED\r\n")
    expect(sock, b"delete %d\r\n" % big, b"NOT_FOUND\r\n")
    sock.sendall(b"quit\r\n")
    if sock.recv(1) != b"":  # the server's close_notify reads as a clean end
        raise AssertionError("bytes after quit")
    print("tls: ok")


def refused(sock):
    try:
        sock.sendall(b"stats\r\n")
        data = sock.recv(1)
    except (ssl.SSLError, ConnectionError, EOFError) as e:
        print("refused: ok (%s)" % type(e).__name__)
        return
    if data:
        raise AssertionError("the server answered a client it should have refused: %r" % data)
    print("refused: ok (closed)")


def main():
    host, port, ca, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca)
    if len(sys.argv) > 6:
        ctx.load_cert_chain(sys.argv[5], sys.argv[6])
    raw = socket.create_connection((host, port), timeout=20)
    try:
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError) as e:
        if mode == "refused":
            print("refused: ok (handshake: %s)" % type(e).__name__)
            return
        raise
    with sock:
        jobs(sock) if mode == "jobs" else refused(sock)


if __name__ == "__main__":
    main()
