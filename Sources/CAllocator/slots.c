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

// Blocks smaller than a page: each behind a 16-byte header that names its size class, so that
// a freed block goes back to a per-thread cache of its class (a singly linked list through the
// header) and the next allocation of the class takes it from there, without malloc. A burst of
// calls allocates and frees nghttp2's streams, frames and header buffers by the hundred: more
// than glibc's per-thread cache keeps, so each would reach its arenas. Each thread keeps at most
// SMALL_CACHE_MAX blocks a class (about 1 MiB in all) and gives them back to malloc when it ends.
// Blocks above the largest class come from malloc behind the same header.
#define SMALL_HEADER 16
#define SMALL_CLASSES 4
#define SMALL_CACHE_MAX 1024
#define SMALL_MAGIC 0xE5A10000u
#define LARGE_CLASS 0xFFFFu
static const size_t class_size[SMALL_CLASSES] = {64, 128, 256, 512};

struct small_cache {
    char *head[SMALL_CLASSES];
    uint32_t count[SMALL_CLASSES];
    int registered;  // the thread's exit drains it
};
static __thread struct small_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void drain_cache(void *value) {
    struct small_cache *c = value;
    for (int k = 0; k < SMALL_CLASSES; k++) {
        while (c->head[k] != NULL) {
            char *base = c->head[k];
            c->head[k] = *(char **)(base + 8);
            free(base);
        }
        c->count[k] = 0;
    }
}
static void make_cache_key(void) { pthread_key_create(&cache_key, drain_cache); }

static inline int class_of(size_t total) {
    return total <= 64 ? 0 : total <= 128 ? 1 : total <= 256 ? 2 : total <= 512 ? 3 : -1;
}

/// The header of a block from small_malloc; aborts on a pointer that is not one (a foreign or
/// corrupted block would otherwise corrupt the cache).
static inline uint32_t header_class(const char *base) {
    uint32_t tag = *(const uint32_t *)base;
    uint32_t k = tag & 0xFFFFu;
    if ((tag & 0xFFFF0000u) != SMALL_MAGIC || (k >= SMALL_CLASSES && k != LARGE_CLASS)) abort();
    return k;
}

static void *small_malloc(size_t size) {
    if (size > SIZE_MAX - SMALL_HEADER) return NULL;
    size_t total = size + SMALL_HEADER;
    int k = class_of(total);
    char *base;
    if (k >= 0) {
        base = cache.head[k];
        if (base != NULL) {
            cache.head[k] = *(char **)(base + 8);
            cache.count[k]--;
        } else {
            base = malloc(class_size[k]);
            if (base == NULL) return NULL;
        }
        *(uint32_t *)base = SMALL_MAGIC | (uint32_t)k;
    } else {
        base = malloc(total);
        if (base == NULL) return NULL;
        *(uint32_t *)base = SMALL_MAGIC | LARGE_CLASS;
    }
    return base + SMALL_HEADER;
}

static void small_free(void *ptr) {
    if (ptr == NULL) return;
    char *base = (char *)ptr - SMALL_HEADER;
    uint32_t k = header_class(base);
    if (k < SMALL_CLASSES && cache.count[k] < SMALL_CACHE_MAX) {
        if (!cache.registered) {
            pthread_once(&cache_key_once, make_cache_key);
            pthread_setspecific(cache_key, &cache);
            cache.registered = 1;
        }
        *(char **)(base + 8) = cache.head[k];
        cache.head[k] = base;
        cache.count[k]++;
        return;
    }
    free(base);
}

static void *small_realloc(void *ptr, size_t size) {
    if (ptr == NULL) return small_malloc(size);
    if (size == 0) { small_free(ptr); return NULL; }
    char *base = (char *)ptr - SMALL_HEADER;
    uint32_t k = header_class(base);
    if (k == LARGE_CLASS) {  // stays with malloc, whatever its new size: realloc keeps the header
        if (size > SIZE_MAX - SMALL_HEADER) return NULL;
        char *resized = realloc(base, size + SMALL_HEADER);
        return resized == NULL ? NULL : resized + SMALL_HEADER;
    }
    size_t capacity = class_size[k] - SMALL_HEADER;
    if (size <= capacity) return ptr;
    void *moved = small_malloc(size);
    if (moved == NULL) return NULL;  // ptr stays valid, as realloc leaves it
    memcpy(moved, ptr, capacity);  // size > capacity here
    small_free(ptr);
    return moved;
}

uint32_t esaylov_small_cached(size_t size) {
    int k = class_of(size + SMALL_HEADER);
    return k < 0 ? 0 : cache.count[k];
}

void *esaylov_page_slots_malloc(size_t size, void *slots) {
    int zeroed;
    void *p = take(slots, size, &zeroed);
    return p != NULL ? p : small_malloc(size);
}

void *esaylov_page_slots_calloc(size_t count, size_t size, void *slots) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    int zeroed;
    void *p = take(slots, count * size, &zeroed);
    if (p == NULL) {
        p = small_malloc(count * size);
        if (p != NULL) memset(p, 0, count * size);
        return p;
    }
    if (!zeroed) memset(p, 0, count * size);
    return p;
}

void esaylov_page_slots_release(void *ptr, void *slots) {
    esaylov_page_slots *s = slots;
    if (!esaylov_page_slots_owns(s, ptr)) { small_free(ptr); return; }
    uint32_t index = (uint32_t)(((char *)ptr - s->region) / s->slot_size);
    pthread_mutex_lock(&s->lock);
    s->free_list[s->freed++] = index;
    s->in_use--;
    pthread_mutex_unlock(&s->lock);
}

void *esaylov_page_slots_realloc(void *ptr, size_t size, void *slots) {
    esaylov_page_slots *s = slots;
    if (ptr == NULL) return esaylov_page_slots_malloc(size, slots);
    if (!esaylov_page_slots_owns(s, ptr)) return small_realloc(ptr, size);  // stays outside the slots
    if (size == 0) { esaylov_page_slots_release(ptr, slots); return NULL; }
    if (size <= s->slot_size) return ptr;
    void *moved = small_malloc(size);
    if (moved == NULL) return NULL;  // ptr stays valid, as realloc leaves it
    memcpy(moved, ptr, s->slot_size);
    esaylov_page_slots_release(ptr, slots);
    return moved;
}
