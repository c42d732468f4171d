#ifndef ESAYLOV_CALLOCATOR_H
#define ESAYLOV_CALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

/// Fixes glibc's mmap and trim thresholds (bytes), which otherwise adapt as the process runs.
/// Returns 1 when both were set.
int esaylov_fix_malloc_thresholds(int mmap_threshold, int trim_threshold);

/// Page slots: blocks of one page up to `slot_size` bytes are served from page-aligned slots of
/// one reserved region, smaller and larger ones by malloc behind a header (below). A slot's pages take memory only once
/// written, so a block that is mostly unused (nghttp2's 16 KiB output buffer of an idle session,
/// its 4 KiB stream map before the first stream) costs only the pages it touched, and calloc of
/// a slot never used before needs no memset. Freed slots are reused first (their pages are
/// resident already). When the region is used up, or could not be reserved, those blocks come
/// from malloc too. Thread-safe. The signatures are nghttp2_mem's, with the slots as its user data.
typedef struct esaylov_page_slots esaylov_page_slots;

/// Reserves `count` slots of `slot_size` bytes (rounded up to whole pages). Returns NULL only
/// when the bookkeeping cannot be allocated; a region that cannot be mapped leaves every block
/// to malloc.
esaylov_page_slots *esaylov_page_slots_new(size_t slot_size, uint32_t count);
/// Unmaps the region. Only when none of its blocks is in use any more.
void esaylov_page_slots_free(esaylov_page_slots *slots);
/// The process's slots for nghttp2 sessions: 64 Ki slots of 20 KiB (1.25 GiB of address space,
/// reserved without commit).
esaylov_page_slots *esaylov_page_slots_shared(void);

void *esaylov_page_slots_malloc(size_t size, void *slots);
void esaylov_page_slots_release(void *ptr, void *slots);
void *esaylov_page_slots_calloc(size_t count, size_t size, void *slots);
void *esaylov_page_slots_realloc(void *ptr, size_t size, void *slots);

/// Blocks below a page come from a per-thread cache of freed blocks by size class (64 to 512
/// bytes with their 16-byte header), in front of malloc; larger ones that are no slot come from
/// malloc behind the same header. `esaylov_small_cached(size)`: how many freed blocks of the
/// class serving `size` bytes the calling thread keeps now (for tests).
uint32_t esaylov_small_cached(size_t size);

/// Whether `ptr` is a slot of `slots` (rather than a block from malloc).
int esaylov_page_slots_owns(const esaylov_page_slots *slots, const void *ptr);
/// Slots in use now.
uint32_t esaylov_page_slots_in_use(esaylov_page_slots *slots);

#endif
