// Background work of the server (verifying index checksums, opening and swapping in new
// versions) runs at the lowest CPU priority, so that it takes the cores only when queries do not
// need them: measured under 8 querying clients on 2 cores, verifying a 322 MB version at normal
// priority made every batch 4x slower for half a second.
#pragma once

namespace tda {

// Sets the calling thread's nice value to 19 (Linux: per thread; threads it starts inherit it).
// Best effort: a failure leaves the priority as it was.
void RunThisThreadAtBackgroundPriority();

}  // namespace tda
