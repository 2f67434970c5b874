/*
 * sse_spread.c: when a graceful restart spreads the closing of streams
 * (see sse_spread.h), and cutting it short.
 *
 * Which stop is which, per MPM (httpd 2.4's server/mpm/):
 *   - event, worker: child_stopping(graceful = 1) at a graceful restart,
 *     a graceful stop and a child retired as idle; only a restart moved
 *     the scoreboard to a new generation first.  A stop or a hard restart
 *     is child_stopping(0), or, for a child already stopping gracefully,
 *     the parent's SIGTERM (ap_reclaim_child_processes) alone: the main
 *     thread's handler does nothing else.
 *   - prefork: child_stopping(0) always, from clean_child_exit: after
 *     SIGUSR1 (a graceful restart or stop: the child finishes its request
 *     first) in the main loop, or inside the SIGTERM / SIGHUP handler
 *     (just_die: a stop, a hard restart), where that signal is blocked.
 * So a spread starts when the generation moved on and the stop is
 * graceful, and is cut by child_stopping(0) (not prefork's graceful one)
 * or by a SIGTERM from another process (the parent).  The listener of the
 * event and worker MPMs sends its own process a SIGTERM to wake the main
 * thread when it closes the listeners: that one is not a stop.
 *
 * The SIGTERM handler is installed when a spread starts, in front of the
 * MPM's (which it then calls); it only sets flags and writes eventfds.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ap_mpm.h"
#include "scoreboard.h"

#include "sse_log.h"
#include "sse_spread.h"
#include "sse_broker.h"
#include "sse_held.h"
#include "sse_suspend.h"

static apr_interval_time_t window;      /* SSERestartSpread */
static volatile sig_atomic_t spreading; /* started in this child */
static volatile sig_atomic_t cut;       /* cut short: end everything now */
static apr_time_t until;                /* a held stream ends by then */
static struct sigaction mpm_term;       /* the MPM's SIGTERM handler */
static pthread_mutex_t begin_lock = PTHREAD_MUTEX_INITIALIZER;

void sse_spread_configure(apr_interval_time_t w)
{
    window = w;
}

/* The scoreboard has moved on to another generation: a restart. */
static int spread_restart(void)
{
    int mine;

    return ap_scoreboard_image
        && ap_mpm_query(AP_MPMQ_GENERATION, &mine) == APR_SUCCESS
        && ap_scoreboard_image->global->running_generation != mine;
}

/* Inside prefork's SIGTERM or SIGHUP handler (just_die): a stop or a hard
 * restart. */
static int spread_in_kill_handler(void)
{
    sigset_t cur;

    return pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0
        && (sigismember(&cur, SIGTERM) == 1 || sigismember(&cur, SIGHUP) == 1);
}

/* Everything now: the broker closes what is left, held and suspended
 * streams end.  Async-signal-safe. */
static void spread_cut(void)
{
    cut = 1;
    sse_broker_spread_cut();
    sse_held_stop();
    sse_suspend_stop();
}

static void spread_term(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;

    if (!si || si->si_pid != getpid()) {
        spread_cut();           /* the parent: a stop, or a hard restart */
    }
    if (mpm_term.sa_flags & SA_SIGINFO) {
        if (mpm_term.sa_sigaction) {
            mpm_term.sa_sigaction(sig, si, uc);
        }
    }
    else if (mpm_term.sa_handler == SIG_DFL) {
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
    }
    else if (mpm_term.sa_handler != SIG_IGN) {
        mpm_term.sa_handler(sig);
    }
    errno = saved;
}

/* Put spread_term in front of whatever handles SIGTERM now (prefork sets
 * SIG_IGN on its way out, after the spread may have begun: again then). */
static void spread_watch_term(void)
{
    struct sigaction sa, now;

    if (sigaction(SIGTERM, NULL, &now) == 0
        && (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == spread_term) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = spread_term;
    sa.sa_flags = SA_SIGINFO | (now.sa_flags & SA_RESTART);
    sigemptyset(&sa.sa_mask);
    mpm_term = now;
    sigaction(SIGTERM, &sa, NULL);
}

/* Any thread but a signal handler. */
static int spread_begin(void)
{
    pthread_mutex_lock(&begin_lock);
    if (!cut && !spreading) {
        until = apr_time_now() + window + apr_time_from_sec(1);
        spreading = 1;
        sse_broker_spread(window);
    }
    if (!cut) {
        spread_watch_term();
    }
    pthread_mutex_unlock(&begin_lock);
    return !cut;
}

int sse_spread_stopping(int graceful)
{
    int hard = !strcmp(ap_show_mpm(), "prefork") ? spread_in_kill_handler()
                                                   : !graceful;

    if (window > 0 && !hard && spread_restart()) {
        return spread_begin();
    }
    if (spreading) {
        spread_cut();
    }
    return 0;
}

int sse_spread_held(void)
{
    if (window <= 0 || cut) {
        return 0;
    }
    if (spreading && apr_time_now() > until) {
        return 0;               /* the broker should have closed it */
    }
    return spread_begin();
}
