#include "callocator.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct esaylov_page_slots {
    pthread_mutex_t lock;
    char *region;          // NULL when it could not be mapped
    size_t slot_size;      // a multiple of the page size
    size_t min_size;       // one page: smaller blocks go to malloc
    uint32_t count;
    uint32_t fresh;        // slots [fresh, count) were never handed out: their pages are untouched
    uint32_t freed;        // entries in free_list: slots handed out before and given back
    uint32_t in_use;
    uint32_t *free_list;
};

esaylov_page_slots *esaylov_page_slots_new(size_t slot_size, uint32_t count) {
    esaylov_page_slots *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->min_size = page;
    s->slot_size = (slot_size + page - 1) / page * page;
    s->count = count;
    s->free_list = malloc((size_t)count * sizeof(uint32_t));
    if (s->free_list == NULL) { free(s); return NULL; }
    pthread_mutex_init(&s->lock, NULL);
    void *region = mmap(NULL, s->slot_size * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->region = region == MAP_FAILED ? NULL : region;
    return s;
}

void esaylov_page_slots_free(esaylov_page_slots *s) {
    if (s == NULL) return;
    if (s->region != NULL) munmap(s->region, s->slot_size * s->count);
    pthread_mutex_destroy(&s->lock);
    free(s->free_list);
    free(s);
}

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static esaylov_page_slots *shared_slots;
static void make_shared(void) { shared_slots = esaylov_page_slots_new(20 * 1024, 1u << 16); }

esaylov_page_slots *esaylov_page_slots_shared(void) {
    pthread_once(&shared_once, make_shared);
    return shared_slots;
}

int esaylov_page_slots_owns(const esaylov_page_slots *s, const void *ptr) {
    if (s == NULL || s->region == NULL || ptr == NULL) return 0;
    const char *p = ptr;
    return p >= s->region && p < s->region + s->slot_size * s->count;
}

uint32_t esaylov_page_slots_in_use(esaylov_page_slots *s) {
    if (s == NULL) return 0;
    pthread_mutex_lock(&s->lock);
    uint32_t n = s->in_use;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/// A slot for `size` bytes, or NULL (then malloc serves it). `*zeroed` tells whether its bytes
/// are known to be zero (never handed out before).
static void *take(esaylov_page_slots *s, size_t size, int *zeroed) {
    if (s == NULL || s->region == NULL || size < s->min_size || size > s->slot_size) return NULL;
    void *p = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->freed > 0) {
        p = s->region + (size_t)s->free_list[--s->freed] * s->slot_size;
        *zeroed = 0;
    } else if (s->fresh < s->count) {
        p = s->region + (size_t)s->fresh++ * s->slot_size;
        *zeroed = 1;
    }
    if (p != NULL) s->in_use++;
    pthread_mutex_unlock(&s->lock);
    return p;
}

void *esaylov_page_slots_malloc(size_t size, void *slots) {
    int zeroed;
    void *p = take(slots, size, &zeroed);
    return p != NULL ? p : malloc(size);
}

void *esaylov_page_slots_calloc(size_t count, size_t size, void *slots) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    int zeroed;
    void *p = take(slots, count * size, &zeroed);
    if (p == NULL) return calloc(count, size);
    if (!zeroed) memset(p, 0, count * size);
    return p;
}

void esaylov_page_slots_release(void *ptr, void *slots) {
    esaylov_page_slots *s = slots;
    if (!esaylov_page_slots_owns(s, ptr)) { free(ptr); return; }
    uint32_t index = (uint32_t)(((char *)ptr - s->region) / s->slot_size);
    pthread_mutex_lock(&s->lock);
    s->free_list[s->freed++] = index;
    s->in_use--;
    pthread_mutex_unlock(&s->lock);
}

void *esaylov_page_slots_realloc(void *ptr, size_t size, void *slots) {
    esaylov_page_slots *s = slots;
    if (ptr == NULL) return esaylov_page_slots_malloc(size, slots);
    if (!esaylov_page_slots_owns(s, ptr)) return realloc(ptr, size);  // stays with malloc
    if (size == 0) { esaylov_page_slots_release(ptr, slots); return NULL; }
    if (size <= s->slot_size) return ptr;
    void *moved = malloc(size);
    if (moved == NULL) return NULL;  // ptr stays valid, as realloc leaves it
    memcpy(moved, ptr, s->slot_size);
    esaylov_page_slots_release(ptr, slots);
    return moved;
}
