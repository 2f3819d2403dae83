// STUB: replaced by the EXDEV-checked rename and mount identity helpers.
#include "addon.h"
namespace vhostplug {
void InitFsOps(Napi::Env, Napi::Object, AddonData*) {}
}
