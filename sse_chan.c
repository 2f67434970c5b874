/*
 * sse_chan.c: the channel table (see sse_chan.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sse_chan.h"

apr_hash_t *sse_chan_table_make(apr_pool_t *p)
{
    return apr_hash_make(p);
}

sse_chan_t *sse_chan_find(apr_hash_t *t, const char *name, apr_size_t len)
{
    return apr_hash_get(t, name, (apr_ssize_t)len);
}

int sse_chan_join(apr_hash_t *t, sse_link_t *link, const char *name,
                  struct sse_sub_t *sub)
{
    apr_size_t len = strlen(name);
    sse_chan_t *ch = sse_chan_find(t, name, len);

    if (!ch) {
        ch = calloc(1, sizeof(*ch));
        if (!ch || !(ch->name = malloc(len + 1))) {
            free(ch);
            return -1;
        }
        memcpy(ch->name, name, len + 1);
        ch->len = len;
        apr_hash_set(t, ch->name, (apr_ssize_t)len, ch);
    }
    link->chan = ch;
    link->sub = sub;
    link->prev = NULL;
    link->next = ch->head;
    if (ch->head) {
        ch->head->prev = link;
    }
    ch->head = link;
    ch->count++;
    return 0;
}

void sse_chan_leave(apr_hash_t *t, sse_link_t *link)
{
    sse_chan_t *ch = link->chan;

    if (!ch) {
        return;
    }
    if (link->prev) {
        link->prev->next = link->next;
    }
    else {
        ch->head = link->next;
    }
    if (link->next) {
        link->next->prev = link->prev;
    }
    link->chan = NULL;
    if (--ch->count == 0) {
        apr_hash_set(t, ch->name, (apr_ssize_t)ch->len, NULL);
        free(ch->name);
        free(ch);
    }
}
