/*
 * sse_loop.c: one thread's event loop (see sse_loop.h).  Linux epoll; the
 * timers are an unsorted list, as in Redis's ae.c, because a loop has only
 * a few of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "sse_loop.h"

struct sse_loop_t {
    int ep;
    int max_events;
    int max_wait_ms;
    void *owner;
    volatile int stop;
    unsigned long pass;         /* passes started */
    apr_time_t now;
    sse_timer_t *timers;        /* armed ones */
    sse_hook_fn *before_wait;
    void *before_wait_data;
    struct epoll_event evs[];
};

sse_loop_t *sse_loop_create(int max_events, int max_wait_ms, void *owner)
{
    sse_loop_t *loop = calloc(1, sizeof(*loop)
                                  + (size_t)max_events * sizeof(struct epoll_event));

    if (!loop) {
        return NULL;
    }
    loop->ep = epoll_create1(EPOLL_CLOEXEC);
    if (loop->ep < 0) {
        int e = errno;
        free(loop);
        errno = e;
        return NULL;
    }
    loop->max_events = max_events;
    loop->max_wait_ms = max_wait_ms;
    loop->owner = owner;
    loop->now = apr_time_now();
    return loop;
}

void *sse_loop_owner(const sse_loop_t *loop)
{
    return loop->owner;
}

void sse_loop_destroy(sse_loop_t *loop)
{
    if (loop) {
        close(loop->ep);
        free(loop);
    }
}

static uint32_t epoll_mask(unsigned mask)
{
    return (mask & SSE_IO_IN ? EPOLLIN | EPOLLRDHUP : 0)
           | (mask & SSE_IO_OUT ? EPOLLOUT : 0);
}

int sse_loop_add(sse_loop_t *loop, sse_io_t *io, unsigned mask)
{
    struct epoll_event ev;

    ev.events = epoll_mask(mask);
    ev.data.ptr = io;
    if (epoll_ctl(loop->ep, EPOLL_CTL_ADD, io->fd, &ev) < 0) {
        return -1;
    }
    io->mask = mask;
    return 0;
}

void sse_loop_want(sse_loop_t *loop, sse_io_t *io, unsigned mask)
{
    struct epoll_event ev;

    if (mask == io->mask) {
        return;
    }
    ev.events = epoll_mask(mask);
    ev.data.ptr = io;
    if (epoll_ctl(loop->ep, EPOLL_CTL_MOD, io->fd, &ev) == 0) {
        io->mask = mask;
    }
}

void sse_loop_del(sse_loop_t *loop, sse_io_t *io)
{
    epoll_ctl(loop->ep, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
}

void sse_timer_at(sse_loop_t *loop, sse_timer_t *t, apr_time_t when,
                  sse_timer_fn *fn, void *data)
{
    t->when = when;
    t->fn = fn;
    t->data = data;
    /* armed during a pass: due from the next one on, so a timer that arms
     * itself for a time already past cannot hold a pass forever */
    t->pass = loop->pass;
    if (!t->armed) {
        t->armed = 1;
        t->next = loop->timers;
        loop->timers = t;
    }
}

void sse_timer_cancel(sse_loop_t *loop, sse_timer_t *t)
{
    sse_timer_t **pp;

    if (!t->armed) {
        return;
    }
    for (pp = &loop->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = 0;
    t->next = NULL;
}

void sse_loop_before_wait(sse_loop_t *loop, sse_hook_fn *fn, void *data)
{
    loop->before_wait = fn;
    loop->before_wait_data = data;
}

apr_time_t sse_loop_now(const sse_loop_t *loop)
{
    return loop->now;
}

/* How long the wait may be: until the first timer, at most max_wait_ms. */
static int wait_ms(const sse_loop_t *loop)
{
    apr_time_t now = apr_time_now(), first = -1;
    const sse_timer_t *t;
    apr_time_t ms;

    for (t = loop->timers; t; t = t->next) {
        if (first < 0 || t->when < first) {
            first = t->when;
        }
    }
    if (first < 0) {
        return loop->max_wait_ms;
    }
    if (first <= now) {
        return 0;
    }
    ms = (first - now + 999) / 1000;
    return ms < loop->max_wait_ms ? (int)ms : loop->max_wait_ms;
}

/* Run every timer due now that was armed before this pass, one at a time
 * off the list (a callback may arm or cancel any timer). */
static void timers_run(sse_loop_t *loop)
{
    sse_timer_t *t;

    do {
        for (t = loop->timers; t; t = t->next) {
            if (t->when <= loop->now && t->pass < loop->pass) {
                break;
            }
        }
        if (t) {
            sse_timer_cancel(loop, t);
            t->fn(loop, t);
        }
    } while (t);
}

static unsigned io_events(uint32_t ev)
{
    return (ev & (EPOLLIN | EPOLLRDHUP) ? SSE_IO_IN : 0)
           | (ev & EPOLLOUT ? SSE_IO_OUT : 0)
           | (ev & (EPOLLHUP | EPOLLERR) ? SSE_IO_IN | SSE_IO_ERR : 0);
}

void sse_loop_once(sse_loop_t *loop)
{
    int i, n;

    if (loop->before_wait) {
        loop->before_wait(loop, loop->before_wait_data);
    }
    if (loop->stop) {
        return;                 /* asked in the hook: no wait */
    }
    n = epoll_wait(loop->ep, loop->evs, loop->max_events, wait_ms(loop));
    loop->pass++;
    loop->now = apr_time_now();
    timers_run(loop);
    for (i = 0; i < n; i++) {
        sse_io_t *io = loop->evs[i].data.ptr;
        io->fn(loop, io, io_events(loop->evs[i].events));
    }
}

void sse_loop_run(sse_loop_t *loop)
{
    while (!loop->stop) {
        sse_loop_once(loop);
    }
}

void sse_loop_stop(sse_loop_t *loop)
{
    loop->stop = 1;
}

int sse_loop_stopping(const sse_loop_t *loop)
{
    return loop->stop;
}
