#ifndef ESAYLOV_CALLOCATOR_H
#define ESAYLOV_CALLOCATOR_H

/// Fixes glibc's mmap and trim thresholds (bytes), which otherwise adapt as the process runs.
/// Returns 1 when both were set.
int esaylov_fix_malloc_thresholds(int mmap_threshold, int trim_threshold);

#endif
