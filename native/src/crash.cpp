// On a fatal signal: record a fatal log with a backtrace, give the upload thread
// a moment to send it, then die the way the signal intended.
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "micromegas/micromegas.h"
#include "runtime.h"

namespace mm {

namespace {

const mm_LogMetadataRecord kCrashDesc = {0, "fatal signal", "micromegas.crash", "micromegas.crash", __FILE__,
                                         __LINE__, MM_LEVEL_FATAL};
const int kSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE};

void on_fatal_signal(int sig, siginfo_t* info, void*) {
  char msg[8192];
  int n = snprintf(msg, sizeof msg, "fatal signal %d (%s) at address %p\n", sig, strsignal(sig), info ? info->si_addr : nullptr);
  void* frames[64];
  int count = backtrace(frames, 64);
  for (int i = 0; i < count && n < int(sizeof msg) - 256; ++i) {
    Dl_info dl;
    const char* sym = dladdr(frames[i], &dl) && dl.dli_sname ? dl.dli_sname : "?";
    const char* obj = dl.dli_fname ? dl.dli_fname : "?";
    n += snprintf(msg + n, sizeof msg - size_t(n), "  #%d %p %s (%s)\n", i, frames[i], sym, obj);
  }
  mm_log_string(&kCrashDesc, msg, size_t(n));
  if (Runtime* rt = g_runtime.load()) rt->crash_flush(2000);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install_crash_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    void* warm[1];
    backtrace(warm, 1);  // loads libgcc now, not inside the handler
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (int sig : kSignals) sigaction(sig, &sa, nullptr);
  });
}

}  // namespace mm
