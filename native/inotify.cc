// STUB: replaced by the inotify watcher.
#include "addon.h"
namespace vhostplug {
void InitInotify(Napi::Env, Napi::Object, AddonData*) {}
}
