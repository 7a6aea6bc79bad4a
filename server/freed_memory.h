// Gives memory that large calls freed back to the OS. Why it is needed: InitCompute
// (model/model.h) raises glibc's M_TRIM_THRESHOLD to 1 GiB so that training loops keep their
// freed tensors, and gRPC's threads each allocate from their own malloc arena; so the buffers of
// a request just under the 64 MiB message limit (its bytes as received, its parse, the copy of
// its features) stay in the arenas of whichever threads served it, and a few such requests left
// a server ~440 MiB above its idle size. malloc_trim(0) releases the free pages of every arena.
//
// ReturnFreedMemoryAfter(bytes) is called at the end of each call with the size of its request
// (or response); at or above kLargeCallBytes it schedules one malloc_trim(0) on a background
// thread a moment later, when gRPC has freed the call's messages too. Calls close together
// share one trim. Thread-safe.
#pragma once

#include <cstddef>

namespace tda {

inline constexpr size_t kLargeCallBytes = size_t{16} << 20;

void ReturnFreedMemoryAfter(size_t call_bytes);

}  // namespace tda
