#include "args.h"

namespace vhostplug {

std::string PathArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(env, std::string("The \"") + what + "\" argument must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) {
    Napi::Error err = Napi::TypeError::New(
        env, std::string("The \"") + what + "\" argument must be a non-empty path without NUL bytes");
    err.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    throw err;
  }
  return s;
}

}  // namespace vhostplug
