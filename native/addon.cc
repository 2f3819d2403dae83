// Entry point of the vhostplug addon: creates the per-environment state, registers the
// cleanup hook and lets each concern add its functions to exports.
#include "addon.h"

#include <dlfcn.h>

#include <mutex>
#include <vector>

namespace vhostplug {

AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// Keeps this library mapped until the process exits. A worker that loaded the addon
// unloads it at exit, while a detached netns thread may still be running our code and
// libuv may still owe us close callbacks; both would then jump into unmapped memory.
static void PinAddonLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&PinAddonLibrary), &info) != 0 && info.dli_fname != nullptr) {
      // The handle is deliberately never closed.
      (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
}

static void Cleanup(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  data->shutting_down = true;
  // Copy first: CloseFromCleanup may unregister itself.
  std::vector<Closeable*> live(data->live.begin(), data->live.end());
  for (Closeable* c : live) c->CloseFromCleanup();
  data->live.clear();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinAddonLibrary();
  auto* data = new AddonData();
  napi_get_uv_event_loop(env, &data->loop);
  env.SetInstanceData<AddonData>(data);  // freed by node-addon-api at env teardown
  napi_add_env_cleanup_hook(env, Cleanup, data);

  InitStream(env, exports, data);
  InitFsOps(env, exports, data);
  InitOwnership(env, exports, data);
  InitInotify(env, exports, data);
  InitNetlink(env, exports, data);
  InitListener(env, exports, data);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace vhostplug

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return vhostplug::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
