/*
 * sse_status.h: what an operator sees of mod_sse.  An "SSE" section in
 * mod_status's /server-status (HTML, and "Key: value" lines with ?auto),
 * and "SetHandler sse-metrics", the same counters in the Prometheus text
 * format.  Both ask the relay for every child's counters (SSE_OP_STATS)
 * and the channel counts (SSE_OP_LIST) on each request; nothing is cached.
 */
#ifndef SSE_STATUS_H
#define SSE_STATUS_H

#include "apr_pools.h"

/* Register the mod_status hook and the sse-metrics handler; called from
 * mod_sse's register_hooks.  Works whether or not mod_status is loaded. */
void sse_status_register_hooks(apr_pool_t *p);

#endif
