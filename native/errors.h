// Node-shaped system errors: message "<CODE>: <strerror>, <syscall> '<path>' -> '<dest>'",
// with code, errno (negative, as Node's), syscall, path and dest properties.
#pragma once
#include <napi.h>

#include <string>

namespace vhostplug {

Napi::Error SystemError(Napi::Env env, int errnum, const char* syscall, const std::string& path = std::string(),
                        const std::string& dest = std::string(), const std::string& extra = std::string());

// Errors with a vhostplug-specific string code (e.g. "EOVSDBFRAME"), no errno.
Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message);

// Name of an errno value ("EXDEV"), or "UNKNOWN".
const char* ErrnoName(int errnum);

}  // namespace vhostplug
