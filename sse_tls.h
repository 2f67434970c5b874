/*
 * sse_tls.h: a suspended stream's TLS records written straight to its
 * socket (see sse_tls.c).  mod_ssl's SSL object of each connection is
 * recorded when mod_ssl makes it (its pre_handshake hook); the broker's
 * direct writes to a suspended stream encrypt with it and send the record
 * in one system call, as nginx does, instead of passing a brigade through
 * mod_ssl's and the core's output filters.
 */
#ifndef SSE_TLS_H
#define SSE_TLS_H

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

/* The SSL object of c, if its records may be written straight to its
 * socket from now on, else NULL: mod_ssl made one for c, its handshake is
 * done, and c's output filters are mod_ssl's and the core's (with at most
 * mod_reqtimeout's and mod_logio's, which leave the bytes alone), nothing
 * set aside in them.  Call once nothing else writes on c (the watcher, before it
 * watches a stream), after sse_trim_suspended. */
void *sse_tls_direct(conn_rec *c);

/* child_init: the writer's socket BIO (freed with pchild). */
apr_status_t sse_tls_start(apr_pool_t *pchild);

/* Encrypt len bytes with ssl (from sse_tls_direct) and send the record to
 * fd without waiting: APR_SUCCESS when the socket took all of it, else an
 * error, and then the connection must end without another TLS write (its
 * record may be half sent).  One thread only (the broker's), and nothing
 * else may use ssl meanwhile. */
apr_status_t sse_tls_write(void *ssl, int fd, const char *data,
                           apr_size_t len);

#endif
