#include "server/background_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tda {

void RunThisThreadAtBackgroundPriority() {
  const id_t thread = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, thread, 19);
}

}  // namespace tda
