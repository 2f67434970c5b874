/*
 * sse_conf.h: mod_sse's configuration as httpd reads it (sse_conf.c): the
 * directive table, the create and merge of the per-directory and
 * per-server records, and the check of the whole configuration tree.  For
 * mod_sse.c's module record and hooks; the records themselves are in
 * sse_config.h.
 */
#ifndef SSE_CONF_H
#define SSE_CONF_H

#include "httpd.h"
#include "http_config.h"

/* The directives, SSEChannel to SSEClusterPasswordFile: the module
 * record's command table. */
extern const command_rec sse_cmds[];

/* The module record's configuration functions.  Create and merge_srv run
 * in the parent while it reads the configuration; merge_dir there and in
 * the worker threads, as httpd merges a request's sections (then in
 * r->pool). */
void *sse_create_dir_config(apr_pool_t *p, char *dir);
void *sse_merge_dir_config(apr_pool_t *p, void *basev, void *addv);
void *sse_create_srv_config(apr_pool_t *p, server_rec *s);
void *sse_merge_srv_config(apr_pool_t *p, void *basev, void *addv);

/* Warn (SSE00011, with file and line) of the top level and of every
 * section that serves streams on channels the client names with no access
 * control of its own.  Parent: mod_sse.c's check_config (configtest) and
 * post_config. */
void sse_check_config_tree(server_rec *s);

/* Where the MPM's settings would cut streams, when the configuration
 * serves any (at start-up and in configtest): children retired while
 * their streams look idle (SSE00308), prefork with TLS (SSE00309), too
 * few descriptors for SSEMaxSubscribers (SSE00313). */
void sse_check_mpm(server_rec *s);

#endif
