// Argument checks shared by the addon's functions (thrown as Node-style TypeErrors).
#pragma once
#include <napi.h>

#include <string>

namespace vhostplug {

// info[i] as a non-empty string without NUL bytes: a NUL inside a path would silently cut
// it short in the syscall, so it is refused the way Node's fs refuses it.
std::string PathArg(const Napi::CallbackInfo& info, size_t i, const char* what);

}  // namespace vhostplug
