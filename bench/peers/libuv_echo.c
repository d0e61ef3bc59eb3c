/* libuv_echo: the libuv peer in the echo benchmarks, written the way libuv users usually
 * write it (the uvbook tcp-echo-server pattern): alloc_cb mallocs the suggested 64 KiB,
 * read_cb hands exactly the received bytes to uv_write, and the write callback frees the
 * buffer. No back-pressure and no buffer reuse, because typical code has neither; the only
 * addition is TCP_NODELAY, which every server in the comparison sets.
 *
 * Usage: libuv_echo PORT   (listens on 127.0.0.1; SIGINT/SIGTERM exit 0)
 * Single-threaded (one uv_default_loop).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} write_req_t;

static uv_loop_t *loop;

static void check(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, uv_strerror(rc));
        exit(1);
    }
}

static void alloc_buffer(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
    (void)handle;
    buf->base = malloc(suggested_size);
    buf->len = buf->base ? suggested_size : 0;
}

static void on_close(uv_handle_t *handle) {
    free(handle);
}

static void on_write(uv_write_t *req, int status) {
    (void)status; /* a failed write shows up as an error on the next read */
    write_req_t *wr = (write_req_t *)req;
    free(wr->buf.base);
    free(wr);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
    if (nread > 0) {
        write_req_t *wr = malloc(sizeof *wr);
        wr->buf = uv_buf_init(buf->base, (unsigned)nread);
        if (uv_write(&wr->req, client, &wr->buf, 1, on_write) < 0) {
            free(wr->buf.base);
            free(wr);
            uv_close((uv_handle_t *)client, on_close);
        }
        return;
    }
    if (nread < 0)
        uv_close((uv_handle_t *)client, on_close);
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0)
        return;
    uv_tcp_t *client = malloc(sizeof *client);
    uv_tcp_init(loop, client);
    if (uv_accept(server, (uv_stream_t *)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t *)client, alloc_buffer, on_read);
    } else {
        uv_close((uv_handle_t *)client, on_close);
    }
}

static void on_signal(uv_signal_t *handle, int signum) {
    (void)signum;
    uv_stop(handle->loop);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    loop = uv_default_loop();

    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);

    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    check(uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr), "uv_ip4_addr");
    check(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0), "uv_tcp_bind");
    check(uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection), "uv_listen");

    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
