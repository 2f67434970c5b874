/*
 * sse_tls.h: a suspended TLS stream leaves httpd for the broker (see
 * sse_tls.c).  mod_ssl's SSL object of each connection is recorded when
 * mod_ssl makes it (its pre_handshake hook); when a stream's connection
 * would add nothing to its records, the broker takes that object and the
 * socket, and writes the stream's TLS records itself, as nginx does.
 */
#ifndef SSE_TLS_H
#define SSE_TLS_H

#include <sys/types.h>
#include "httpd.h"

/* What mod_sse keeps on a connection (its conn_config), in the
 * connection's pool: mod_ssl's SSL object (NULL: none), and the stream
 * being suspended (sse_suspend.c: from the handler to the MPM's
 * suspend_connection hook).  NULL when none was made and create is 0. */
typedef struct {
    void *ssl;
    struct sse_susp_t *susp;
} sse_conn_t;
sse_conn_t *sse_conn_get(conn_rec *c, int create);

/* register_hooks: record mod_ssl's SSL object of each TLS connection
 * (mod_ssl's optional pre_handshake hook; nothing when mod_ssl is not
 * loaded). */
void sse_tls_register_hooks(void);

/* The SSL object of c, if its stream may leave c for the broker (its
 * records written straight to the socket from then on), else NULL:
 * mod_ssl made one for c, its handshake is done, and c's output filters
 * are mod_ssl's and the core's (with at most mod_reqtimeout's and
 * mod_logio's, which leave the bytes alone), nothing set aside in them.
 * Call once nothing else uses c (the watcher, before it watches a
 * stream), after sse_trim_suspended. */
void *sse_tls_direct(conn_rec *c);

/* child_init: the BIO method of the streams' sockets (freed with
 * pchild). */
apr_status_t sse_tls_start(apr_pool_t *pchild);

/* Take ssl (from sse_tls_direct) from mod_ssl, in two steps around the
 * destruction of its connection, on a thread that alone uses the
 * connection.  Before: sse_tls_take makes a reference to ssl the
 * caller's and gives ssl a write BIO that fails, so that nothing mod_ssl
 * writes as it lets go (a close_notify) reaches the client; it returns
 * what sse_tls_adopt needs, NULL if it could not (nothing changed).
 * After (mod_ssl has let go of ssl): sse_tls_adopt forgets mod_ssl's
 * state on ssl and gives it a BIO on fd, which the caller keeps (and
 * closes after sse_tls_close). */
void *sse_tls_take(void *ssl);
void sse_tls_adopt(void *ssl, void *taken, int fd);

/* Write up to len bytes as TLS records to ssl's socket without waiting:
 * how many (all of them), or -1 with errno EAGAIN when the socket is full
 * (nothing taken: the same bytes must be offered again), or another
 * errno (the stream is over).  One thread at a time. */
ssize_t sse_tls_send(void *ssl, const char *data, size_t len);

/* Send a close_notify if the socket takes it, and free ssl. */
void sse_tls_close(void *ssl);

#endif
