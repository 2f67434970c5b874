/* fuzz_palloc.c: exact-size apr_palloc for the fuzz targets.
 *
 * APR carves pool memory out of 8 KiB blocks, so a write one byte past a pool buffer
 * lands in the next buffer and ASan never sees it. This file defines apr_palloc in the
 * fuzz binary itself: the dynamic linker binds libapr's own calls (apr_pstrmemdup,
 * apr_array_push, apr_hash_set ...) to it too, so every such buffer is its own malloc
 * with a redzone right after it. Blocks from before fz_palloc_keep stay; the others are
 * freed by fz_palloc_release after each input, once the pool was cleared. apr_psprintf still writes into pool blocks (it does
 * not call apr_palloc); that is APR's code, not ours. Link with
 * -Wl,--export-dynamic-symbol=apr_palloc so libapr sees this definition.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>

static void **blocks;
static size_t nblocks, capblocks;

/* Blocks before this index belong to apr_initialize and the global pool, which live
 * as long as the process. */
static size_t keep;

void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    void *m = malloc(size ? size : 1);

    (void)p;
    if (!m)
        abort();
    if (nblocks == capblocks) {
        size_t cap = capblocks ? capblocks * 2 : 1024;
        void **b = realloc(blocks, cap * sizeof(*b));
        if (!b)
            abort();
        blocks = b;
        capblocks = cap;
    }
    blocks[nblocks++] = m;
    return m;
}

#undef apr_pcalloc
void *apr_pcalloc(apr_pool_t *p, apr_size_t size);
void *apr_pcalloc(apr_pool_t *p, apr_size_t size)
{
    return memset(apr_palloc(p, size), 0, size);
}

void fz_palloc_keep(void);
void fz_palloc_keep(void)
{
    keep = nblocks;
}

void fz_palloc_release(void);
void fz_palloc_release(void)
{
    size_t i;

    for (i = keep; i < nblocks; i++)
        free(blocks[i]);
    nblocks = keep;
}
