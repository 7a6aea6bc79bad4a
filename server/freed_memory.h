// Gives memory that large calls freed back to the OS. Why it is needed: InitCompute
// (model/model.h) raises glibc's M_TRIM_THRESHOLD to 1 GiB so that training loops keep their
// freed tensors, and gRPC's threads each allocate from their own malloc arena; so the buffers of
// a request just under the 64 MiB message limit (its bytes as received, its parse, the copy of
// its features) stay in the arenas of whichever threads served it, and a few such requests left
// a server ~440 MiB above its idle size. malloc_trim(0) releases the free pages of every arena.
//
// Two parts, both needed (measured: after 5 requests of 60 MB a server stayed 205 MiB above
// its idle RSS of 220 MiB without either, 140 MiB above with the trim alone, 17-50 MiB above
// with the threshold alone, and 0-30 MiB above it with both):
//  - ReleaseArenaTopsOnFree() (tda-server's main, after InitCompute) lowers M_TRIM_THRESHOLD
//    to kServerTrimThresholdBytes: a thread arena gives its top back when a free leaves more
//    than that there. malloc_trim cannot: it only trims the main arena's top.
//  - ReturnFreedMemoryAfter(bytes), at the end of each call with the size of its request (or
//    response): at or above kLargeCallBytes it schedules one malloc_trim(0) on a background
//    thread a moment later, when gRPC has freed the call's messages too, which releases the
//    free pages inside every arena. Calls close together share one trim.
// Thread-safe.
#pragma once

#include <cstddef>

namespace tda {

inline constexpr size_t kLargeCallBytes = size_t{16} << 20;
inline constexpr int kServerTrimThresholdBytes = 8 << 20;

void ReleaseArenaTopsOnFree();
void ReturnFreedMemoryAfter(size_t call_bytes);

}  // namespace tda
