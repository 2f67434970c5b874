/*
 * sse_count.c: the server-wide stream counts (see sse_count.h).
 */
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_shm.h"

#include "sse_count.h"

enum { COUNT_STREAMS, COUNT_HELD, COUNT_KINDS };

typedef struct {
    apr_uint32_t pid;           /* 0: free */
    apr_uint32_t n[COUNT_KINDS]; /* this child's streams, held streams */
} sse_count_slot_t;

/* Set in the parent, inherited by the children. */
static sse_count_slot_t *slots;
static int nslots;
/* A child's own counters. */
static sse_count_slot_t *mine;

apr_status_t sse_count_init(apr_pool_t *pconf, int children)
{
    apr_shm_t *shm;
    apr_status_t rv;
    int i, k;

    nslots = children > 0 ? children : 1;
    rv = apr_shm_create(&shm, (apr_size_t)nslots * sizeof(*slots), NULL, pconf);
    if (rv != APR_SUCCESS) {
        slots = NULL;
        return rv;
    }
    slots = apr_shm_baseaddr_get(shm);
    for (i = 0; i < nslots; i++) {
        slots[i].pid = 0;
        for (k = 0; k < COUNT_KINDS; k++) {
            slots[i].n[k] = 0;
        }
    }
    return APR_SUCCESS;
}

/* Zero a slot's counters (its child is new, or gone). */
static void count_zero(sse_count_slot_t *slot)
{
    int k;

    for (k = 0; k < COUNT_KINDS; k++) {
        apr_atomic_set32(&slot->n[k], 0);
    }
}

void sse_count_claim(void)
{
    apr_uint32_t pid = (apr_uint32_t)getpid();
    int i;

    mine = NULL;
    for (i = 0; slots && i < nslots; i++) {
        if (apr_atomic_cas32(&slots[i].pid, pid, 0) == 0) {
            count_zero(&slots[i]);
            mine = &slots[i];
            return;
        }
    }
}

/* Count one more of kind unless that passes max (< 0: no limit); 0, or
 * -1 when full.  Count first, then look: concurrent admissions may refuse
 * a little early, but never let the total pass max. */
static int count_admit(int kind, int max)
{
    apr_uint32_t total = 0;
    int i;

    if (!mine) {
        return 0;               /* no table: not counted, not limited */
    }
    apr_atomic_inc32(&mine->n[kind]);
    for (i = 0; max >= 0 && i < nslots; i++) {
        total += apr_atomic_read32(&slots[i].n[kind]);
    }
    if (max >= 0 && total > (apr_uint32_t)max) {
        apr_atomic_dec32(&mine->n[kind]);
        return -1;
    }
    return 0;
}

int sse_count_admit(int max)
{
    return count_admit(COUNT_STREAMS, max ? max : -1);
}

void sse_count_release(void)
{
    if (mine) {
        apr_atomic_dec32(&mine->n[COUNT_STREAMS]);
    }
}

int sse_count_held_admit(int max)
{
    return count_admit(COUNT_HELD, max);
}

void sse_count_held_release(void)
{
    if (mine) {
        apr_atomic_dec32(&mine->n[COUNT_HELD]);
    }
}

void sse_count_child_exited(pid_t pid)
{
    int i;

    for (i = 0; slots && i < nslots; i++) {
        if (apr_atomic_read32(&slots[i].pid) == (apr_uint32_t)pid) {
            count_zero(&slots[i]);
            apr_atomic_set32(&slots[i].pid, 0);
            return;
        }
    }
}
