/*
 * sse_peer.c: a buffered end of a relay connection (see sse_peer.h).
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sse_peer.h"
#include "sse_sock.h"

ssize_t sse_peer_read(sse_peer_t *p, size_t max)
{
    char buf[65536];
    ssize_t n = recv(p->io.fd, buf, max < sizeof(buf) ? max : sizeof(buf),
                     MSG_DONTWAIT);

    if (n > 0 && sse_buf_put(&p->in, buf, (size_t)n)) {
        p->lost = "out of memory";
    }
    return n;
}

int sse_peer_frame(const sse_peer_t *p, size_t pos, sse_frame_hdr_t *h,
                   const char **payload)
{
    return sse_frame_peek(p->in.data + pos, p->in.len - pos, h, payload);
}

int sse_peer_flush(sse_peer_t *p, sse_loop_t *loop)
{
    while (p->out.len) {
        ssize_t n = send(p->io.fd, p->out.data, p->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        sse_buf_consume(&p->out, (size_t)n);
    }
    if (loop) {
        sse_loop_want(loop, &p->io,
                      SSE_IO_IN | (p->out.len ? SSE_IO_OUT : 0));
    }
    return 0;
}

int sse_peer_flush_wait(sse_peer_t *p)
{
    int rc = p->out.len ? sse_sock_write_all(p->io.fd, p->out.data,
                                             p->out.len) : 0;

    p->out.len = 0;
    return rc;
}

void sse_peer_close(sse_peer_t *p, sse_loop_t *loop)
{
    if (p->io.fd >= 0) {
        if (loop && p->io.mask) {
            sse_loop_del(loop, &p->io);
        }
        close(p->io.fd);
        p->io.fd = -1;
    }
    p->in.len = 0;
    p->out.len = 0;
    p->lost = NULL;
}

void sse_peer_free(sse_peer_t *p)
{
    sse_buf_free(&p->in);
    sse_buf_free(&p->out);
}
