/*
 * sse_proto.c: encoding and decoding of relay frames (see sse_proto.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sse_proto.h"

int sse_buf_put(sse_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap - b->len < n) {
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (!d) {
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return 0;
}

int sse_buf_put_u32(sse_buf_t *b, uint32_t v)
{
    return sse_buf_put(b, &v, sizeof(v));
}

int sse_buf_put_u64(sse_buf_t *b, uint64_t v)
{
    uint32_t two[2] = { (uint32_t)(v >> 32), (uint32_t)v };

    return sse_buf_put(b, two, sizeof(two));
}

int sse_buf_put_str(sse_buf_t *b, const char *s, size_t n)
{
    if (n > SSE_PROTO_MAX_FRAME) {
        return -1;
    }
    if (sse_buf_put_u32(b, (uint32_t)n) || sse_buf_put(b, s, n)
        || sse_buf_put(b, "", 1)) {
        return -1;
    }
    return 0;
}

void sse_buf_consume(sse_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void sse_buf_free(sse_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

long sse_frame_begin(sse_buf_t *b, uint32_t type, uint32_t seq)
{
    sse_frame_hdr_t h;
    long off = (long)b->len;

    h.type = type;
    h.seq = seq;
    h.len = 0;
    return sse_buf_put(b, &h, sizeof(h)) ? -1 : off;
}

void sse_frame_end(sse_buf_t *b, long off)
{
    sse_frame_hdr_t h;

    memcpy(&h, b->data + off, sizeof(h));
    h.len = (uint32_t)(b->len - (size_t)off - sizeof(h));
    memcpy(b->data + off, &h, sizeof(h));
}

void sse_frame_stamp(sse_buf_t *req)
{
    sse_frame_hdr_t h;

    memcpy(&h, req->data, sizeof(h));
    h.seq = sse_clock_ms();
    memcpy(req->data, &h, sizeof(h));
}

int sse_frame_peek(const char *in, size_t len, sse_frame_hdr_t *h,
                   const char **payload)
{
    if (len < sizeof(*h)) {
        return 0;
    }
    memcpy(h, in, sizeof(*h));
    if (h->len > SSE_PROTO_MAX_FRAME) {
        return -1;
    }
    if (len - sizeof(*h) < h->len) {
        return 0;
    }
    *payload = in + sizeof(*h);
    return 1;
}

int sse_rd_u32(sse_rd_t *rd, uint32_t *v)
{
    if (rd->left < sizeof(*v)) {
        return -1;
    }
    memcpy(v, rd->p, sizeof(*v));
    rd->p += sizeof(*v);
    rd->left -= sizeof(*v);
    return 0;
}

int sse_rd_u64(sse_rd_t *rd, uint64_t *v)
{
    uint32_t hi, lo;

    if (rd->left < 2 * sizeof(hi)) {
        return -1;
    }
    sse_rd_u32(rd, &hi);
    sse_rd_u32(rd, &lo);
    *v = ((uint64_t)hi << 32) | lo;
    return 0;
}

int sse_rd_str(sse_rd_t *rd, const char **s, size_t *n)
{
    uint32_t len;

    if (sse_rd_u32(rd, &len) || rd->left < (size_t)len + 1
        || rd->p[len] != '\0') {
        return -1;
    }
    *s = rd->p;
    *n = len;
    rd->p += (size_t)len + 1;
    rd->left -= (size_t)len + 1;
    return 0;
}

int sse_event_frame_put(sse_buf_t *b, uint32_t fseq, const char *chan,
                        size_t clen, const char *bytes, size_t len,
                        uint64_t seq)
{
    long off = sse_frame_begin(b, SSE_OP_EVENT, fseq);

    if (off < 0) {
        return -1;
    }
    if (sse_buf_put_str(b, chan, clen) || sse_buf_put_str(b, bytes, len)
        || sse_buf_put_u64(b, seq)) {
        b->len = (size_t)off;
        return -1;
    }
    sse_frame_end(b, off);
    return 0;
}

long sse_run_read(const char *in, size_t len, sse_run_t *run)
{
    sse_frame_hdr_t h;
    const char *payload, *name, *bytes;
    size_t pos = 0, next = 0, total = 0, nlen, blen;
    int has_sync = 0;
    uint64_t mark = 0, seq;

    run->n = 0;
    run->has_sync = 0;
    while (run->n < SSE_RUN_MAX_EVENTS
           && sse_frame_peek(in + next, len - next, &h, &payload) == 1) {
        sse_rd_t rd = { payload, h.len };

        if (h.type == SSE_OP_SYNC && run->n > 0) {
            /* part of the run only if an EVENT of it follows */
            if (sse_rd_u64(&rd, &mark)) {
                return -1;
            }
            has_sync = 1;
            next += sizeof(h) + h.len;
            continue;
        }
        if (h.type != SSE_OP_EVENT) {
            break;
        }
        if (sse_rd_str(&rd, &name, &nlen) || sse_rd_str(&rd, &bytes, &blen)
            || sse_rd_u64(&rd, &seq)) {
            return -1;
        }
        if (run->n == 0) {
            run->name = name;
            run->nlen = nlen;
        }
        else if (nlen != run->nlen || memcmp(name, run->name, nlen)
                 || total + blen > SSE_RUN_MAX_BYTES) {
            break;
        }
        run->ev[run->n].bytes = bytes;
        run->ev[run->n].len = blen;
        run->ev[run->n].seq = seq;
        run->n++;
        total += blen;
        next += sizeof(h) + h.len;
        pos = next;
        run->has_sync = has_sync;
        run->sync_mark = mark;
    }
    return (long)pos;
}

unsigned sse_run_first_after(const sse_run_t *run, uint64_t after)
{
    unsigned k = 0;

    while (k < run->n && run->ev[k].seq <= after) {
        k++;
    }
    return k;
}

size_t sse_run_len(const sse_run_t *run, unsigned k)
{
    size_t len = 0;

    for (; k < run->n; k++) {
        len += run->ev[k].len;
    }
    return len;
}

void sse_run_copy(const sse_run_t *run, unsigned k, char *dst)
{
    for (; k < run->n; k++) {
        memcpy(dst, run->ev[k].bytes, run->ev[k].len);
        dst += run->ev[k].len;
    }
}

int sse_sock_connect_unix(const char *path, int timeout_s)
{
    struct sockaddr_un sa;
    struct timeval tv = { timeout_s, 0 };
    int fd;

    if (!path || strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sse_sock_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

uint32_t sse_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u
                      + (uint64_t)ts.tv_nsec / 1000000u);
}

ssize_t sse_sock_recv_wait(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd;
    ssize_t n;

    pfd.fd = fd;
    pfd.events = POLLIN;
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK
                       && errno != EINTR)) {
            return n;
        }
    }
}

int sse_sock_read_all(int fd, char *buf, size_t len, int timeout_ms)
{
    while (len) {
        ssize_t n = sse_sock_recv_wait(fd, buf, len, timeout_ms);
        if (n <= 0) {
            if (n == 0) {
                errno = 0;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}
