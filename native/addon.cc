// Entry point of the vhostplug addon: creates the per-environment state, registers the
// cleanup hook and lets each concern add its functions to exports.
#include "addon.h"

#include <vector>

namespace vhostplug {

AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

static void Cleanup(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  data->shutting_down = true;
  // Copy first: CloseFromCleanup may unregister itself.
  std::vector<Closeable*> live(data->live.begin(), data->live.end());
  for (Closeable* c : live) c->CloseFromCleanup();
  data->live.clear();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  napi_get_uv_event_loop(env, &data->loop);
  env.SetInstanceData<AddonData>(data);  // freed by node-addon-api at env teardown
  napi_add_env_cleanup_hook(env, Cleanup, data);

  InitStream(env, exports, data);
  InitFsOps(env, exports, data);
  InitInotify(env, exports, data);
  InitNetlink(env, exports, data);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace vhostplug

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return vhostplug::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
