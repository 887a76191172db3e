// mm-game-sim: a synthetic game instrumented with the micromegas native C API.
//
// Each simulated process runs a game thread and a render thread that produce, per frame, a tree of
// nested spans (static mm_SpanRecord descriptors plus named scopes), UE_LOG-style logs with a
// category target and properties, frame-time and memory metrics, and now and then a hitch (a long
// frame) with an error log. Frames are paced to --fps. See --help.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "micromegas/micromegas.h"

namespace {

struct Options {
  std::string url, dir, api_key;
  double seconds = 10;
  int fps = 60;
  int spans_per_frame = 2000;
  int processes = 1;
  uint64_t seed = 1;
  uint32_t shutdown_ms = 5000;
};

void usage(FILE* f) {
  fprintf(f,
          "usage: mm-game-sim (--url URL | --dir DIR) [options]\n"
          "\n"
          "Simulates a game instrumented with micromegas: per process a GameThread and a RenderThread\n"
          "emit nested frame spans, UE_LOG-style logs (category target + properties), frame time (ms,\n"
          "float) and memory (bytes, integer) metrics, and occasional hitches with error logs.\n"
          "\n"
          "  --url URL              ingestion root, e.g. http://localhost:9000 (POSTs /ingestion/insert_*)\n"
          "  --dir DIR              write request bodies to DIR instead (DIR/p<i> when --processes > 1)\n"
          "  --api-key KEY          Bearer key for --url (default: env MICROMEGAS_INGESTION_API_KEY)\n"
          "  --seconds N            how long to run (default 10; fractions allowed)\n"
          "  --fps N                frames per second, paced with sleeps (default 60)\n"
          "  --spans-per-frame N    spans per frame over both threads (default 2000; 60%% game, 40%% render)\n"
          "  --processes N          simulated game processes, one OS process each (default 1)\n"
          "  --seed S               random seed (default 1; process i uses S + i)\n"
          "  --shutdown-ms N        deadline of the final mm_shutdown (default 5000)\n"
          "  --help                 this text\n"
          "\n"
          "At exit each process calls mm_shutdown(--shutdown-ms) and prints the events it recorded per kind,\n"
          "mm_get_stats (blocks sent, dropped) and one line\n"
          "  MM_SIM_TOTALS spans=N logs=N metrics=N process_id=UUID index=I\n"
          "(one per process with --processes). The exit status is non-zero if any block was dropped or\n"
          "the shutdown deadline was hit.\n"
          "Retry pacing of failed uploads: env MICROMEGAS_RETRY_BASE_MS, MICROMEGAS_RETRY_MAX_MS.\n");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "mm-game-sim: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      exit(0);
    } else if (a == "--url") o.url = value();
    else if (a == "--dir") o.dir = value();
    else if (a == "--api-key") o.api_key = value();
    else if (a == "--seconds") o.seconds = atof(value());
    else if (a == "--fps") o.fps = atoi(value());
    else if (a == "--spans-per-frame") o.spans_per_frame = atoi(value());
    else if (a == "--processes") o.processes = atoi(value());
    else if (a == "--seed") o.seed = strtoull(value(), nullptr, 10);
    else if (a == "--shutdown-ms") o.shutdown_ms = uint32_t(strtoul(value(), nullptr, 10));
    else {
      fprintf(stderr, "mm-game-sim: unknown option %s\n", a.c_str());
      return false;
    }
  }
  if (o.url.empty() == o.dir.empty()) {
    fprintf(stderr, "mm-game-sim: give exactly one of --url and --dir\n");
    return false;
  }
  if (o.fps <= 0 || o.seconds < 0 || o.spans_per_frame < 0 || o.processes <= 0) {
    fprintf(stderr, "mm-game-sim: --fps and --processes must be positive, --seconds and --spans-per-frame >= 0\n");
    return false;
  }
  return true;
}

// ---- static descriptors (what UE's SCOPE_CYCLE_COUNTER / TRACE_CPUPROFILER_EVENT_SCOPE would declare) ----
#define MM_SPAN(var, name, target) \
  const mm_SpanRecord var = {0, name, target, "mm_game_sim", __FILE__, __LINE__, MM_LOD_MED}

MM_SPAN(kGameFrame, "FEngineLoop::Tick", "Engine");
MM_SPAN(kWorldTick, "UWorld::Tick", "Engine");
MM_SPAN(kPhysics, "FPhysScene::Tick", "Physics");
MM_SPAN(kAI, "UAISystem::Tick", "AI");
MM_SPAN(kAnimation, "UAnimInstance::UpdateAnimation", "Animation");
MM_SPAN(kGC, "CollectGarbage", "Engine");
MM_SPAN(kRenderFrame, "FRenderingThread::Tick", "Renderer");
MM_SPAN(kShadows, "RenderShadowDepthMaps", "Renderer");
MM_SPAN(kBasePass, "RenderBasePass", "Renderer");
MM_SPAN(kPostProcess, "AddPostProcessingPasses", "Renderer");
MM_SPAN(kPresent, "FViewport::Present", "RHI");
const mm_SpanLocationRecord kActorTick = {0, "Game", "mm_game_sim", __FILE__, __LINE__, MM_LOD_MAX};
const mm_SpanLocationRecord kDrawCall = {0, "Renderer", "mm_game_sim", __FILE__, __LINE__, MM_LOD_MAX};

const char* const kActors[] = {"Tick BP_Crane_C_0", "Tick BP_Boat_C_3", "Tick BP_Gull_C_12", "Tick BP_Player_C_0",
                               "Tick BP_Door_C_7", "Tick BP_Light_C_21", "Tick BP_Cargo_C_5", "Tick BP_Npc_C_9"};
const char* const kDraws[] = {"Draw SM_Dock", "Draw SM_Water", "Draw SK_Player", "Draw SM_Crate",
                              "Draw SM_Terrain", "Draw Niagara_Splash"};

struct Counters {
  std::atomic<uint64_t> spans{0}, logs{0}, metrics{0}, frames{0}, hitches{0};
};

struct Shared {
  const Options* o;
  uint64_t seed;
  std::chrono::steady_clock::time_point start, end;
  Counters c;
  const mm_PropertySet* props;
  const mm_LogMetadataRecord* log_info;
  const mm_LogMetadataRecord* log_net;
  const mm_LogMetadataRecord* log_hitch;
  const mm_LogMetadataRecord* log_render;
  const mm_MetricMetadataDependency* frame_time;
  const mm_MetricMetadataDependency* render_time;
  const mm_MetricMetadataDependency* memory;
};

void ue_log(Shared& s, const mm_LogMetadataRecord* desc, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void ue_log(Shared& s, const mm_LogMetadataRecord* desc, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  mm_log_tagged(desc, s.props, buf, size_t(std::clamp(n, 0, int(sizeof buf) - 1)));
  s.c.logs++;
}

void busy_for(std::chrono::microseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Leaf work: `n` named spans under the current scope, spread over the actor/draw names.
void leaves(Shared& s, const mm_SpanLocationRecord* loc, const char* const* names, size_t count, int n,
            std::mt19937_64& rng) {
  for (int i = 0; i < n; ++i) {
    const char* name = names[rng() % count];
    mm_span_begin_named(loc, name);
    mm_span_end_named(loc, name);
  }
  s.c.spans += uint64_t(n);
}

void scoped(Shared& s, const mm_SpanRecord* d, int leaves_n, const mm_SpanLocationRecord* loc,
            const char* const* names, size_t count, std::mt19937_64& rng) {
  mm_span_begin(d);
  leaves(s, loc, names, count, leaves_n, rng);
  mm_span_end(d);
  s.c.spans++;
}

// Frame pacing: sleeps until the next frame boundary; after a hitch the schedule restarts from now
// (late frames are not caught up with a burst of short ones, as in a real game loop).
struct Pacer {
  std::chrono::steady_clock::time_point next;
  std::chrono::nanoseconds period;
  Pacer(const Shared& s) : next(s.start), period(1000000000LL / s.o->fps) {}
  void wait() {
    next += period;
    auto now = std::chrono::steady_clock::now();
    if (now >= next) next = now;
    else std::this_thread::sleep_until(next);
  }
};
bool running(const Shared& s) { return std::chrono::steady_clock::now() < s.end; }

void game_thread(Shared& s) {
  mm_set_thread_name("GameThread");
  std::mt19937_64 rng(s.seed * 2 + 1);
  int budget = s.o->spans_per_frame * 6 / 10;
  int fixed = 6;  // frame, world, physics, AI, animation, (GC)
  int per_scope = std::max(0, budget - fixed) / 3;
  uint64_t memory = 2ull << 30;
  Pacer pacer(s);
  std::chrono::steady_clock::time_point previous;
  double frame_ms = 0;
  for (int64_t f = 0; running(s); ++f) {
    auto t0 = std::chrono::steady_clock::now();
    if (f > 0) {  // frame time: start to start, so it shows pacing and hitches like stat unit
      frame_ms = std::chrono::duration<double, std::milli>(t0 - previous).count();
      mm_metric_float(s.frame_time, frame_ms);
      s.c.metrics++;
    }
    previous = t0;
    mm_span_begin(&kGameFrame);
    mm_span_begin(&kWorldTick);
    scoped(s, &kPhysics, per_scope, &kActorTick, kActors, std::size(kActors), rng);
    scoped(s, &kAI, per_scope, &kActorTick, kActors, std::size(kActors), rng);
    scoped(s, &kAnimation, std::max(0, budget - fixed - 2 * per_scope), &kActorTick, kActors, std::size(kActors), rng);
    mm_span_end(&kWorldTick);
    s.c.spans++;
    bool hitch = rng() % 240 == 0;  // about every 4 s at 60 fps
    if (hitch) {
      auto ms = 40 + int(rng() % 120);
      mm_span_begin(&kGC);
      busy_for(std::chrono::milliseconds(ms));
      mm_span_end(&kGC);
      s.c.spans++;
      s.c.hitches++;
      ue_log(s, s.log_hitch, "Hitch detected: frame %" PRId64 " took %d ms in CollectGarbage", f, ms);
    }
    mm_span_end(&kGameFrame);
    s.c.spans++;
    memory += rng() % (1 << 20);
    if (hitch) memory -= std::min<uint64_t>(memory - (2ull << 30), 256ull << 20);
    mm_metric_int(s.memory, memory);
    s.c.metrics++;
    if (f % s.o->fps == 0)
      ue_log(s, s.log_info, "Frame %" PRId64 ": %.2f ms, %" PRIu64 " MiB used", f, frame_ms, memory >> 20);
    if (rng() % 500 == 0) ue_log(s, s.log_net, "Warning: player p-%d ping %d ms", int(rng() % 64), 150 + int(rng() % 300));
    s.c.frames++;
    pacer.wait();
  }
}

void render_thread(Shared& s) {
  mm_set_thread_name("RenderThread");
  std::mt19937_64 rng(s.seed * 2 + 2);
  int budget = s.o->spans_per_frame - s.o->spans_per_frame * 6 / 10;
  int fixed = 5;
  int per_scope = std::max(0, budget - fixed) / 3;
  Pacer pacer(s);
  for (int64_t f = 0; running(s); ++f) {
    auto t0 = std::chrono::steady_clock::now();
    mm_span_begin(&kRenderFrame);
    scoped(s, &kShadows, per_scope, &kDrawCall, kDraws, std::size(kDraws), rng);
    scoped(s, &kBasePass, std::max(0, budget - fixed - 2 * per_scope), &kDrawCall, kDraws, std::size(kDraws), rng);
    scoped(s, &kPostProcess, per_scope, &kDrawCall, kDraws, std::size(kDraws), rng);
    mm_span_begin(&kPresent);
    mm_span_end(&kPresent);
    mm_span_end(&kRenderFrame);
    s.c.spans += 2;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    mm_metric_float(s.render_time, ms);
    s.c.metrics++;
    if (rng() % 900 == 0) ue_log(s, s.log_render, "Error: GPU crash dump requested (device lost, frame %" PRId64 ")", f);
    pacer.wait();
  }
}

int run_process(const Options& o, int index) {
  std::string dir = o.dir;
  if (!dir.empty() && o.processes > 1) dir += "/p" + std::to_string(index);
  if (!dir.empty()) std::filesystem::create_directories(dir);
  std::string seed_text = std::to_string(o.seed + uint64_t(index));
  const char* props[] = {"game", "harbor-sim", "sim-seed", seed_text.c_str(), "platform-name", "Linux", nullptr};
  mm_config cfg;
  mm_config_init(&cfg);
  if (!o.url.empty()) cfg.url = o.url.c_str();
  if (!dir.empty()) cfg.directory = dir.c_str();
  if (!o.api_key.empty()) cfg.api_key = o.api_key.c_str();
  cfg.properties = props;
  cfg.exe = "mm-game-sim";
  int rc = mm_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "mm-game-sim: mm_init failed (%d): %s\n", rc, mm_last_error());
    return 1;
  }

  Shared s;
  s.o = &o;
  s.seed = o.seed + uint64_t(index);
  const char* kv[] = {"map", "Harbor_P", "net-mode", "ListenServer", "build", "Development"};
  s.props = mm_intern_properties(kv, 3);
  auto desc = [](uint32_t level, const char* target, const char* fmt) {
    return mm_intern_log_desc(level, target, strlen(target), fmt, strlen(fmt));
  };
  s.log_info = desc(MM_LEVEL_INFO, "LogEngine", "Frame {}: {} ms");
  s.log_net = desc(MM_LEVEL_WARN, "LogNet", "player ping");
  s.log_hitch = desc(MM_LEVEL_ERROR, "LogStreaming", "Hitch detected");
  s.log_render = desc(MM_LEVEL_ERROR, "LogRHI", "GPU crash");
  s.frame_time = mm_intern_metric_desc("FrameTime", 9, "ms", 2, "Engine", 6);
  s.render_time = mm_intern_metric_desc("RenderThreadTime", 16, "ms", 2, "Renderer", 8);
  s.memory = mm_intern_metric_desc("PhysicalMemoryUsed", 18, "bytes", 5, "Memory", 6);
  ue_log(s, s.log_info, "mm-game-sim process %d starting: %d fps, %d spans/frame, seed %" PRIu64, index, o.fps,
      o.spans_per_frame, s.seed);

  s.start = std::chrono::steady_clock::now();
  s.end = s.start + std::chrono::nanoseconds(int64_t(o.seconds * 1e9));
  std::thread game(game_thread, std::ref(s)), render(render_thread, std::ref(s));
  game.join();
  render.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.start).count();
  ue_log(s, s.log_info, "mm-game-sim process %d done after %.2f s", index, elapsed);

  int shut = mm_shutdown(o.shutdown_ms);  // flushes, then stops the upload thread
  mm_stats st;
  mm_get_stats(&st);
  uint64_t dropped_blocks = 0, dropped_events = 0;
  for (int k = 0; k < 4; ++k) dropped_blocks += st.blocks_dropped[k], dropped_events += st.events_dropped[k];
  printf("process %d (%s): %" PRIu64 " frames in %.2f s, %" PRIu64 " hitches\n", index, mm_process_id(),
         s.c.frames.load(), elapsed, s.c.hitches.load());
  printf("  recorded: spans %" PRIu64 " (%" PRIu64 " cpu events), logs %" PRIu64 ", metrics %" PRIu64 "\n",
         s.c.spans.load(), 2 * s.c.spans.load(), s.c.logs.load(), s.c.metrics.load());
  printf("  stats: blocks sent %" PRIu64 ", requests sent %" PRIu64 ", bytes sent %" PRIu64 ", retries %" PRIu64
         ", blocks dropped %" PRIu64 " [log %" PRIu64 " metrics %" PRIu64 " cpu %" PRIu64 " image %" PRIu64
         "], events dropped %" PRIu64 " [log %" PRIu64 " metrics %" PRIu64 " cpu %" PRIu64 " image %" PRIu64
         "], still queued %" PRIu64 " bytes%s\n",
         st.blocks_sent, st.requests_sent, st.bytes_sent, st.retries, dropped_blocks, st.blocks_dropped[0],
         st.blocks_dropped[1], st.blocks_dropped[2], st.blocks_dropped[3], dropped_events, st.events_dropped[0],
         st.events_dropped[1], st.events_dropped[2], st.events_dropped[3], st.queued_bytes,
         shut ? " (shutdown deadline hit)" : "");
  fflush(stdout);
  // One write per line (stdout is flushed around it), so the lines of forked processes never mix.
  printf("MM_SIM_TOTALS spans=%" PRIu64 " logs=%" PRIu64 " metrics=%" PRIu64 " process_id=%s index=%d\n",
         s.c.spans.load(), s.c.logs.load(), s.c.metrics.load(), mm_process_id(), index);
  fflush(stdout);
  return dropped_blocks || shut ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  if (o.processes == 1) return run_process(o, 0);
  // One OS process per simulated game process: each has its own telemetry process_id.
  std::vector<pid_t> children;
  for (int i = 0; i < o.processes; ++i) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      break;
    }
    if (pid == 0) _exit(run_process(o, i));
    children.push_back(pid);
  }
  int failures = o.processes - int(children.size());
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  return failures ? 1 : 0;
}
