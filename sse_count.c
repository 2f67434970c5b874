/*
 * sse_count.c: the server-wide stream count (see sse_count.h).
 */
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_shm.h"

#include "sse_count.h"

typedef struct {
    apr_uint32_t pid;           /* 0: free */
    apr_uint32_t streams;
} sse_count_slot_t;

/* Set in the parent, inherited by the children. */
static sse_count_slot_t *slots;
static int nslots;
/* A child's own counter. */
static sse_count_slot_t *mine;

apr_status_t sse_count_init(apr_pool_t *pconf, int children)
{
    apr_shm_t *shm;
    apr_status_t rv;
    int i;

    nslots = children > 0 ? children : 1;
    rv = apr_shm_create(&shm, (apr_size_t)nslots * sizeof(*slots), NULL, pconf);
    if (rv != APR_SUCCESS) {
        slots = NULL;
        return rv;
    }
    slots = apr_shm_baseaddr_get(shm);
    for (i = 0; i < nslots; i++) {
        slots[i].pid = 0;
        slots[i].streams = 0;
    }
    return APR_SUCCESS;
}

void sse_count_claim(void)
{
    apr_uint32_t pid = (apr_uint32_t)getpid();
    int i;

    mine = NULL;
    for (i = 0; slots && i < nslots; i++) {
        if (apr_atomic_cas32(&slots[i].pid, pid, 0) == 0) {
            apr_atomic_set32(&slots[i].streams, 0);
            mine = &slots[i];
            return;
        }
    }
}

int sse_count_admit(int max)
{
    apr_uint32_t total = 0;
    int i;

    if (!mine) {
        return 0;               /* no table: not counted, not limited */
    }
    /* Count first, then look: concurrent admissions may refuse a little
     * early, but never let the total pass max. */
    apr_atomic_inc32(&mine->streams);
    for (i = 0; max && i < nslots; i++) {
        total += apr_atomic_read32(&slots[i].streams);
    }
    if (max && total > (apr_uint32_t)max) {
        apr_atomic_dec32(&mine->streams);
        return -1;
    }
    return 0;
}

void sse_count_release(void)
{
    if (mine) {
        apr_atomic_dec32(&mine->streams);
    }
}

void sse_count_child_exited(pid_t pid)
{
    int i;

    for (i = 0; slots && i < nslots; i++) {
        if (apr_atomic_read32(&slots[i].pid) == (apr_uint32_t)pid) {
            apr_atomic_set32(&slots[i].streams, 0);
            apr_atomic_set32(&slots[i].pid, 0);
            return;
        }
    }
}
