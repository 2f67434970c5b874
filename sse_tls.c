/*
 * sse_tls.c: a TLS stream that leaves httpd for the broker (see sse_tls.h).
 *
 * A suspended TLS stream (sse_suspend.c) kept its whole connection while
 * it was open: httpd's connection pool and bucket allocator, mod_ssl's
 * filters and their 8 KB input buffer, a place among the event MPM's
 * suspended connections, a socketpair to the broker and the watcher's
 * rounds, and every event went through mod_ssl's and the core's filters
 * (a brigade, buckets, mod_ssl's BIO, the core's writev).  Measured over
 * 10,000 streams: about 37.5 KB a stream, and a fifth of the CPU of a
 * delivery in that machinery.  What the stream needs once its request is
 * over is its TLS session and its socket.  So, when the watcher takes it
 * (its request ended, no other thread on the connection), the stream
 * leaves: the broker adopts mod_ssl's SSL object and a duplicate of the
 * socket, and from then on encrypts each write into the socket itself, as
 * nginx does, reading the socket only for the client's hang-up as for any
 * parked stream; the connection is then destroyed as at a stream's end,
 * without a close (sse_suspend.c, susp_adopt).  About 16.5 KB a stream
 * remain, nearly all OpenSSL's.
 *
 * What that rests on.  mod_ssl hands each connection's SSL object to its
 * optional pre_handshake hook, public in httpd 2.4 (mod_ssl_openssl.h,
 * which Debian's apache2-dev does not ship: the hook's type is declared
 * here, as that header does).  SSL objects are reference counted
 * (SSL_up_ref): mod_ssl's SSL_free when its connection goes drops its
 * reference, not the object.  While the connection is destroyed mod_ssl
 * may still try a close (its EOC, its pool cleanup): the SSL object's
 * write BIO is then one whose writes fail, and quiet shutdown is on, so
 * that no close_notify reaches the client nor stays queued for the next
 * record; mod_ssl's own BIOs are kept alive until it has let go (their
 * destroy does not read their filter contexts, which die with the pool).
 * Then the object forgets mod_ssl: no conn_rec as its app data, no info
 * callback of mod_ssl's (it would read that conn_rec), its BIO ours on
 * the socket for reading and writing, no partial writes (a write takes
 * all it is given or nothing, and after a full socket the same bytes are
 * offered again, ACCEPT_MOVING_WRITE_BUFFER since they may move).  The
 * handshake's callbacks (SNI, ALPN, tickets, client certificates) are done
 * with by then.  Only when the filters would do nothing else: the chain
 * must be mod_ssl's filter and the core's, with at most filters that leave
 * the bytes alone (filter_passive: mod_reqtimeout's, which Debian enables,
 * and mod_logio's), and the core must hold no set-aside bytes.
 *
 * Memory: a small record per TLS connection in its pool (the SSL object
 * and the stream being suspended, see sse_conn_t); one BIO method per
 * child, freed with the child's pool; an adopted stream's BIO belongs to
 * its SSL object, which the broker's subscriber owns (sse_tls_close).
 */
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_log.h"
#include "util_filter.h"
#include "apr_optional_hooks.h"

#include "sse_log.h"
#include "sse_tls.h"

/* mod_ssl's optional hook, as mod_ssl_openssl.h declares it. */
typedef int ssl_HOOK_pre_handshake_t(conn_rec *c, SSL *ssl, int is_proxy);

static struct {
    BIO_METHOD *meth;           /* the stream socket BIO's */
} T;

sse_conn_t *sse_conn_get(conn_rec *c, int create)
{
    sse_conn_t *k = ap_get_module_config(c->conn_config, &sse_module);

    if (!k && create) {
        k = apr_pcalloc(c->pool, sizeof(*k));
        ap_set_module_config(c->conn_config, &sse_module, k);
    }
    return k;
}

static int tls_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    if (!is_proxy) {
        sse_conn_get(c, 1)->ssl = ssl;
    }
    return DECLINED;
}

void sse_tls_register_hooks(void)
{
    APR_OPTIONAL_HOOK(ssl, pre_handshake, tls_pre_handshake, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

static int filter_is(const ap_filter_t *f, const char *name)
{
    return f && f->frec && f->frec->name && !strcasecmp(f->frec->name, name);
}

/* Connection output filters that leave a stream's event bytes as they
 * are, so that writing past them changes nothing: mod_reqtimeout's acts on
 * a request's EOR bucket alone, mod_logio's counts bytes for an access log
 * line (written when the stream was suspended). */
static int filter_passive(const ap_filter_t *f)
{
    return filter_is(f, "reqtimeout") || filter_is(f, "LOG_INPUT_OUTPUT");
}

void *sse_tls_direct(conn_rec *c)
{
    sse_conn_t *k = sse_conn_get(c, 0);
    SSL *ssl = k ? k->ssl : NULL;
    ap_filter_t *f;
    int seen_ssl = 0;

    if (!ssl || !T.meth || !SSL_is_init_finished(ssl)
        || SSL_want(ssl) != SSL_NOTHING || !SSL_get_wbio(ssl)
        || c->data_in_output_filters) {
        return NULL;
    }
    for (f = c->output_filters; f && !filter_is(f, "CORE"); f = f->next) {
        if (!seen_ssl && filter_is(f, "SSL/TLS Filter")) {
            seen_ssl = 1;
        }
        else if (!filter_passive(f)) {
            return NULL;
        }
    }
    return seen_ssl && f && !f->next ? ssl : NULL;
}

/* The BIO: send() without waiting and without SIGPIPE. */
static int tls_bio_write(BIO *b, const char *in, int inl)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do {
        n = send(fd, in, (size_t)inl, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BIO_set_retry_write(b);
    }
    return (int)n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH;   /* nothing is buffered */
}

static int tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static apr_status_t tls_stop(void *data)
{
    (void)data;
    BIO_meth_free(T.meth);
    T.meth = NULL;
    return APR_SUCCESS;
}

apr_status_t sse_tls_start(apr_pool_t *pchild)
{
    T.meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                          "mod_sse stream socket");
    if (!T.meth || !BIO_meth_set_write(T.meth, tls_bio_write)
        || !BIO_meth_set_ctrl(T.meth, tls_bio_ctrl)
        || !BIO_meth_set_create(T.meth, tls_bio_create)) {
        tls_stop(NULL);
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(pchild, NULL, tls_stop, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

static void tls_info_none(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
}

void *sse_tls_take(void *ssl_)
{
    SSL *ssl = ssl_;
    BIO *theirs = SSL_get_wbio(ssl), *mine = T.meth ? BIO_new(T.meth) : NULL;

    if (!mine || !theirs) {
        BIO_free(mine);
        return NULL;
    }
    BIO_set_data(mine, (void *)(intptr_t)-1);      /* writes fail */
    SSL_set_quiet_shutdown(ssl, 1);     /* and a close tries none: a failed
                                           one would stay queued, sent
                                           before the next record */
    SSL_up_ref(ssl);
    BIO_up_ref(theirs);         /* mod_ssl's filter may still name it */
    SSL_set0_wbio(ssl, mine);   /* SSL's reference to theirs dropped */
    return theirs;
}

void sse_tls_adopt(void *ssl_, void *theirs, int fd)
{
    SSL *ssl = ssl_;
    BIO *mine = SSL_get_wbio(ssl);

    BIO_free(theirs);           /* mod_ssl is gone: the last reference */
    SSL_set_quiet_shutdown(ssl, 0);
    SSL_set_shutdown(ssl, 0);   /* mod_ssl's close set both */
    SSL_set_app_data(ssl, NULL);            /* its conn_rec is freed */
    SSL_set_info_callback(ssl, tls_info_none);
    SSL_clear_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    BIO_set_data(mine, (void *)(intptr_t)fd);
    BIO_up_ref(mine);
    SSL_set0_rbio(ssl, mine);   /* mod_ssl's input BIO freed */
    ERR_clear_error();
}

ssize_t sse_tls_send(void *ssl_, const char *data, size_t len)
{
    SSL *ssl = ssl_;
    int n;

    if (len > INT_MAX) {
        len = INT_MAX;
    }
    n = SSL_write(ssl, data, (int)len);
    if (n > 0) {
        return n;
    }
    if (BIO_should_retry(SSL_get_wbio(ssl))) {
        errno = EAGAIN;         /* the same bytes again, later */
    }
    else {
        ERR_clear_error();
        errno = EPIPE;
    }
    return -1;
}

void sse_tls_close(void *ssl_)
{
    SSL *ssl = ssl_;

    SSL_shutdown(ssl);          /* close_notify, if the socket takes it */
    ERR_clear_error();
    SSL_free(ssl);              /* and its BIO */
}
