// Per-environment addon state. Every long-lived native object registers itself here so
// the environment's cleanup hook can close it (worker threads and process exit alike).
#pragma once
#include <napi.h>
#include <uv.h>

#include <functional>
#include <unordered_set>

namespace vhostplug {

class Closeable {
 public:
  virtual ~Closeable() = default;
  // Releases fds and uv handles; must be safe to call twice.
  virtual void CloseFromCleanup() = 0;
};

struct AddonData {
  uv_loop_t* loop = nullptr;
  std::unordered_set<Closeable*> live;
  bool shutting_down = false;
  Napi::FunctionReference stream_ctor;
  Napi::FunctionReference inotify_ctor;
  Napi::FunctionReference unix_listener_ctor;
};

AddonData* GetAddonData(Napi::Env env);

// Module initialisers, one per concern (each in its own .cc).
void InitStream(Napi::Env env, Napi::Object exports, AddonData* data);
void InitFsOps(Napi::Env env, Napi::Object exports, AddonData* data);
void InitOwnership(Napi::Env env, Napi::Object exports, AddonData* data);
void InitInotify(Napi::Env env, Napi::Object exports, AddonData* data);
void InitNetlink(Napi::Env env, Napi::Object exports, AddonData* data);
void InitListener(Napi::Env env, Napi::Object exports, AddonData* data);

}  // namespace vhostplug
