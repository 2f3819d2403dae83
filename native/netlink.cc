// STUB: replaced by rtnetlink (veth, addresses, routes).
#include "addon.h"
namespace vhostplug {
void InitNetlink(Napi::Env, Napi::Object, AddonData*) {}
}
