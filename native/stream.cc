// STUB: replaced by the OVSDB stream transport.
#include "addon.h"
namespace vhostplug {
void InitStream(Napi::Env, Napi::Object, AddonData*) {}
}
