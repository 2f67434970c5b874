/*
 * sse_held.c: held streams (see sse_held.h).
 *
 * The worker sleeps in poll() on its end of the socketpair and, for TLS,
 * on the client socket; it wakes once a second only to notice a stopping
 * child or an HTTP/2 stream the client reset (mod_http2 marks the
 * secondary connection aborted; it has no socket to poll).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "http_main.h"
#include "scoreboard.h"
#include "mpm_common.h"
#include "apr_atomic.h"
#include "apr_buckets.h"

#include "sse_log.h"
#include "sse_held.h"
#include "sse_count.h"
#include "sse_suspend.h"

static apr_uint32_t held_count;     /* this child's held streams */
static volatile int held_stopping;

int sse_held_default_max(void)
{
    int threads = 1;

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    return threads / 2 > 1 ? threads / 2 : 1;
}

int sse_held_admit(int max)
{
    if (apr_atomic_inc32(&held_count) >= (apr_uint32_t)max) {
        apr_atomic_dec32(&held_count);
        return -1;
    }
    return 0;
}

void sse_held_release(void)
{
    apr_atomic_dec32(&held_count);
}

void sse_held_stop(void)
{
    held_stopping = 1;
}

/* Pass bytes to the client, flushed.  APR_SUCCESS or the error. */
static apr_status_t held_write(request_rec *r, apr_bucket_brigade *bb,
                               const char *buf, apr_size_t len)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, len, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

/* The TLS client's socket was readable: anything but "no data yet" ends. */
static int held_client_gone(conn_rec *c, apr_bucket_brigade *bb)
{
    apr_status_t rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES,
                                     APR_NONBLOCK_READ, 4096);
    int gone = rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv);

    if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)) {
        gone = 0;
    }
    else if (rv == APR_SUCCESS
             && APR_BUCKET_IS_EOS(APR_BRIGADE_FIRST(bb))) {
        gone = 1;
    }
    apr_brigade_cleanup(bb);
    return gone;
}

/* The client socket to watch for a close, or -1 (HTTP/2: none). */
static int held_client_fd(conn_rec *c)
{
    apr_socket_t *csd;
    apr_os_sock_t fd;

    if (c->master || !(csd = ap_get_conn_socket(c))
        || apr_os_sock_get(&fd, csd) != APR_SUCCESS) {
        return -1;
    }
    return fd;
}

/* A restart made this child old: it must end its requests to exit (the
 * prefork MPM has no child_stopping call before a child's last request). */
static int held_old_generation(void)
{
    int mine;

    return ap_scoreboard_image
        && ap_mpm_query(AP_MPMQ_GENERATION, &mine) == APR_SUCCESS
        && ap_scoreboard_image->global->running_generation != mine;
}

static const char *held_loop(request_rec *r, int pair)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    struct pollfd pfd[2];
    char buf[16384];
    int nfds, client = held_client_fd(c);

    pfd[0].fd = pair;
    pfd[0].events = POLLIN;
    pfd[1].fd = client;
    pfd[1].events = POLLIN;
    nfds = client >= 0 ? 2 : 1;
    for (;;) {
        int n = poll(pfd, (nfds_t)nfds, 1000);
        if (held_stopping || held_old_generation()) {
            return "child stopping";
        }
        if (c->aborted) {
            return "client closed";
        }
        if (n < 0 && errno != EINTR) {
            return "poll failed";
        }
        if (n > 0 && pfd[0].revents) {
            ssize_t got = recv(pair, buf, sizeof(buf), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                return "ended by the broker";
            }
            if (got > 0 && held_write(r, bb, buf, (apr_size_t)got)
                           != APR_SUCCESS) {
                return "write failed";
            }
        }
        if (n > 0 && nfds > 1 && pfd[1].revents
            && held_client_gone(c, bb)) {
            return "client closed";
        }
    }
}

int sse_held_serve(request_rec *r, const sse_sub_spec_t *spec, int suspend)
{
    sse_sub_t *sub;
    const char *why;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                      "SSE00301: cannot make a socketpair for a held stream");
        apr_atomic_dec32(&held_count);
        sse_count_release();
        return OK;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    {
        sse_sub_spec_t held = *spec;
        held.held = suspend ? 2 : 1;
        sub = sse_sub_create(sv[0], &held);
    }
    if (!sub || sse_broker_park(sub) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SSE00302: cannot hand the held stream to the broker");
        if (sub) {
            sse_sub_free(sub);
        }
        else {
            close(sv[0]);
        }
        close(sv[1]);
        apr_atomic_dec32(&held_count);
        sse_count_release();
        return OK;
    }
    if (suspend && sse_suspend_serve(r, sv[1]) == 0) {
        return SUSPENDED;   /* the worker goes back to the MPM */
    }
    if (!suspend) {
        why = held_loop(r, sv[1]);
    }
    else {
        why = "could not be suspended";  /* no held place was taken */
    }
    close(sv[1]);           /* the broker sees EOF and drops the stream */
    if (!suspend) {
        apr_atomic_dec32(&held_count);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "SSE00303: held stream ended: %s", why);
    return OK;
}
