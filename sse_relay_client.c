/*
 * sse_relay_client.c: the calls that talk to the relay (see sse_relay.h).
 * Run by a child's worker threads (publish, admin and status requests):
 * one short request, one result.  No httpd in it.  tools/sse-publish does
 * not link it: it sends its own PUBLISH and reads the RESULT with the same
 * sse_wire.h get.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sse_relay.h"
#include "sse_sock.h"
#include "sse_wire.h"

const char *sse_relay_path;

int sse_relay_connect(void)
{
    return sse_sock_connect_unix(sse_relay_path, SSE_RELAY_TIMEOUT_S);
}

/* Each worker thread keeps one connection to the relay (the relay answers
 * a connection's requests one at a time, and a thread asks one at a time),
 * so a publish costs no connect. */
static __thread int relay_conn_fd = -1;
static __thread pid_t relay_conn_pid;
static pid_t relay_child_pid;   /* sse_relay_child_init */

void sse_relay_child_init(void)
{
    relay_child_pid = getpid();
}

/* This thread's connection, made when missing; -1 with errno on failure.
 * A connection made in the parent (whose threads a child inherits) is not
 * the child's. */
static int relay_conn_get(void)
{
    if (relay_conn_fd >= 0 && relay_conn_pid == relay_child_pid) {
        return relay_conn_fd;
    }
    relay_conn_fd = sse_relay_connect();
    relay_conn_pid = relay_child_pid;
    return relay_conn_fd;
}

static void relay_conn_drop(void)
{
    if (relay_conn_fd >= 0 && relay_conn_pid == relay_child_pid) {
        close(relay_conn_fd);
    }
    relay_conn_fd = -1;
}

/* Read the RESULT of this connection's one request: usually header and
 * payload in one recv (nothing else can follow it on the connection).
 * Returns 0 with *payload in p, or -1. */
static int relay_read_result(apr_pool_t *p, int fd, sse_frame_hdr_t *h,
                             char **payload)
{
    char buf[4096];
    size_t have = 0, got;
    ssize_t n;

    while (have < sizeof(*h)) {
        n = sse_sock_recv_wait(fd, buf + have, sizeof(buf) - have,
                               SSE_RELAY_TIMEOUT_S * 1000);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
    got = have - sizeof(*h);
    if (sse_frame_hdr_read(buf, h)
        || (h->type != SSE_OP_RESULT && h->type != SSE_OP_REFUSED)
        || got > h->len) {
        return -1;
    }
    *payload = apr_palloc(p, h->len + 1);
    memcpy(*payload, buf + sizeof(*h), got);
    return got < h->len ? sse_sock_read_all(fd, *payload + got, h->len - got,
                                          SSE_RELAY_TIMEOUT_S * 1000)
                        : 0;
}

apr_status_t sse_relay_call(apr_pool_t *p, sse_buf_t *req,
                            sse_relay_result_t *res)
{
    sse_frame_hdr_t h;
    sse_rd_t rd;
    char *payload;
    int fd = relay_conn_get();

    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    sse_frame_stamp(req);
    if (sse_sock_write_all(fd, req->data, req->len)) {
        /* The kept connection may belong to a relay that has since been
         * restarted; nothing was sent, so one retry on a new one is safe. */
        relay_conn_drop();
        sse_frame_stamp(req);
        if ((fd = relay_conn_get()) < 0
            || sse_sock_write_all(fd, req->data, req->len)) {
            relay_conn_drop();
            return APR_EGENERAL;
        }
    }
    if (relay_read_result(p, fd, &h, &payload)) {
        relay_conn_drop();      /* no answer: the caller says 503 */
        return APR_EGENERAL;
    }
    /* res's strings point into payload, which is in p */
    rd.p = payload;
    rd.left = h.len;
    if (h.type == SSE_OP_REFUSED) {
        const char *why;
        size_t len;
        if (sse_wire_refused_get(&rd, &why, &len)) {
            return APR_EGENERAL;
        }
        res->id = apr_pstrmemdup(p, why, len);
        res->replies = NULL;
        return SSE_RELAY_REFUSED;
    }
    return sse_wire_result_get(p, &rd, res) ? APR_EGENERAL : APR_SUCCESS;
}

apr_status_t sse_relay_request(apr_pool_t *p, int op, const char *key,
                               sse_relay_result_t *res)
{
    sse_buf_t b = { 0 };
    apr_status_t rv = sse_wire_request_put(&b, (uint32_t)op, 0, key)
                      ? APR_ENOMEM : sse_relay_call(p, &b, res);

    sse_buf_free(&b);
    return rv;
}

apr_status_t sse_relay_check(apr_pool_t *p, const char *last_id,
                             const char *const *keys, int n,
                             sse_relay_result_t *res)
{
    sse_buf_t b = { 0 };
    apr_status_t rv = sse_wire_resume_put(&b, SSE_OP_CHECK, 0, last_id, keys, n)
                      ? APR_ENOMEM : sse_relay_call(p, &b, res);

    sse_buf_free(&b);
    return rv;
}

apr_status_t sse_relay_publish(apr_pool_t *p, const sse_wire_publish_t *pub,
                               sse_relay_result_t *res)
{
    sse_buf_t b = { 0 };
    apr_status_t rv = sse_wire_publish_put(&b, pub) ? APR_ENOMEM
                                                     : sse_relay_call(p, &b, res);

    sse_buf_free(&b);
    return rv;
}

apr_hash_t *sse_relay_sum_lists(apr_pool_t *p, const sse_relay_result_t *res,
                                apr_array_header_t **names)
{
    apr_hash_t *sum = apr_hash_make(p);
    int i, nf;

    if (names) {
        *names = apr_array_make(p, 8, sizeof(char *));
    }
    for (i = 0; i < res->replies->nelts; i++) {
        /* a copy in p, cut in place: the names are the hash's keys */
        char *txt = apr_pstrdup(p, APR_ARRAY_IDX(res->replies, i, char *));
        char *f[2];
        long *n;
        while ((nf = sse_wire_line(&txt, '\n', '\t', f, 2)) > 0) {
            if (nf < 2) {
                continue;
            }
            if (!(n = apr_hash_get(sum, f[0], APR_HASH_KEY_STRING))) {
                n = apr_pcalloc(p, sizeof(*n));
                apr_hash_set(sum, f[0], APR_HASH_KEY_STRING, n);
                if (names) {
                    APR_ARRAY_PUSH(*names, const char *) = f[0];
                }
            }
            *n += atol(f[1]);
        }
    }
    return sum;
}

