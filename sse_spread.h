/*
 * sse_spread.h: reloads without a stampede (SSERestartSpread).  At a
 * graceful restart the old children do not close every stream at once:
 * the broker (sse_broker_spread) tells each stream to reconnect after a
 * delay of its own and closes them a slice at a time over the window.
 * This file decides when that applies and cuts it short when the child
 * is told to stop for good meanwhile.
 */
#ifndef SSE_SPREAD_H
#define SSE_SPREAD_H

#include "httpd.h"

/* Parent, post_config: the window (0: off); the children inherit it. */
void sse_spread_configure(apr_interval_time_t window);

/* child_stopping (graceful: the MPM's flag; prefork always says 0): 1 if
 * a spread runs (started now or before), so held and suspended streams
 * are left to the broker, which closes them at their time; 0 if every
 * stream is to end now as before (a stop, a graceful stop, a child
 * retired, a hard restart, or no window), a spread under way cut. */
int sse_spread_stopping(int graceful);

/* A held stream's worker saw a restart (a new generation; prefork's only
 * sign of it before its child exits): 1 if it is to go on until the
 * broker closes it (a spread runs, started now if need be), 0 if it ends
 * now. */
int sse_spread_held(void);

#endif
