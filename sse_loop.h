/*
 * sse_loop.h: one thread's event loop, the shape of Redis's ae.c: file
 * events (descriptors watched with epoll, each with its callback), timers,
 * and a hook run before every wait.  The broker thread of each child and
 * the relay process each run one; nothing in it locks (one thread), except
 * sse_loop_stop(), which any thread may call.
 *
 * A watched descriptor is an sse_io_t that its owner embeds in its own
 * state (a subscriber, a connection): the loop allocates nothing per
 * descriptor, and epoll hands the sse_io_t back with each event.  A timer
 * is an sse_timer_t its owner embeds the same way; the loop keeps the armed
 * ones on a short unsorted list (a broker has two, the relay four).
 */
#ifndef SSE_LOOP_H
#define SSE_LOOP_H

#include <stddef.h>

#include "apr_time.h"

typedef struct sse_loop_t sse_loop_t;
typedef struct sse_io_t sse_io_t;
typedef struct sse_timer_t sse_timer_t;

/* What an io waits for and what its callback is told. */
#define SSE_IO_IN   1u          /* readable, or the peer hung up */
#define SSE_IO_OUT  2u          /* writable */
#define SSE_IO_ERR  4u          /* (told only) hang-up or error: read to see */

typedef void sse_io_fn(sse_loop_t *loop, sse_io_t *io, unsigned events);
typedef void sse_timer_fn(sse_loop_t *loop, sse_timer_t *t);
typedef void sse_hook_fn(sse_loop_t *loop, void *data);

/* No pointer back to its owner: a subscriber holds tens of thousands of
 * them, so its callback finds the owner from io's place in it
 * (SSE_IO_OWNER) or from the loop's owner (sse_loop_owner). */
struct sse_io_t {
    int fd;
    unsigned mask;              /* SSE_IO_IN | SSE_IO_OUT now asked for */
    sse_io_fn *fn;
};

/* The struct of type that embeds io as its member. */
#define SSE_IO_OWNER(io, type, member) \
    ((type *)(void *)((char *)(io) - offsetof(type, member)))

struct sse_timer_t {
    apr_time_t when;
    sse_timer_fn *fn;
    void *data;                 /* the owner's */
    int armed;
    unsigned long pass;         /* the loop's pass that armed it */
    sse_timer_t *next;
};

/* A loop that takes at most max_events events per wait and waits at most
 * max_wait_ms (timers may make it shorter); owner is the state it serves,
 * for callbacks (sse_loop_owner).  NULL with errno on failure.  Free it
 * with sse_loop_destroy(), which closes only its epoll set. */
sse_loop_t *sse_loop_create(int max_events, int max_wait_ms, void *owner);
void *sse_loop_owner(const sse_loop_t *loop);
void sse_loop_destroy(sse_loop_t *loop);

/* Watch io->fd for mask (SSE_IO_IN, SSE_IO_OUT); 0, or -1 with errno. */
int sse_loop_add(sse_loop_t *loop, sse_io_t *io, unsigned mask);
/* Change what io waits for (nothing happens when it is the same). */
void sse_loop_want(sse_loop_t *loop, sse_io_t *io, unsigned mask);
/* Stop watching io, before its descriptor is closed: an epoll entry lives
 * as long as the open file, which another process may still hold.  Free
 * io's memory only in the before-wait hook or later: a later event of the
 * same batch may still name it. */
void sse_loop_del(sse_loop_t *loop, sse_io_t *io);

/* Arm t (again) to run fn once at when; a timer runs once per arming. */
void sse_timer_at(sse_loop_t *loop, sse_timer_t *t, apr_time_t when,
                  sse_timer_fn *fn, void *data);
void sse_timer_cancel(sse_loop_t *loop, sse_timer_t *t);

/* fn(loop, data) runs before every wait (Redis's beforeSleep): work that
 * a batch of events produced is finished there, once per batch. */
void sse_loop_before_wait(sse_loop_t *loop, sse_hook_fn *fn, void *data);

/* The time the current pass started (after its wait). */
apr_time_t sse_loop_now(const sse_loop_t *loop);

/* One pass: the hook, one wait, the due timers, then every event's
 * callback.  sse_loop_run() passes until sse_loop_stop(). */
void sse_loop_once(sse_loop_t *loop);
void sse_loop_run(sse_loop_t *loop);
/* Any thread or a signal handler: the loop returns after its current
 * pass (the caller wakes it, e.g. with an eventfd it watches). */
void sse_loop_stop(sse_loop_t *loop);
int sse_loop_stopping(const sse_loop_t *loop);

#endif
