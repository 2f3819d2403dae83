#include "errors.h"

#include <uv.h>

#include <cstring>

namespace vhostplug {

const char* ErrnoName(int errnum) {
  // libuv maps errno to the same names Node uses in err.code.
  return uv_err_name(-errnum);
}

Napi::Error SystemError(Napi::Env env, int errnum, const char* syscall, const std::string& path,
                        const std::string& dest, const std::string& extra) {
  char buf[256];
  const char* desc = strerror_r(errnum, buf, sizeof(buf));
  std::string code = ErrnoName(errnum);
  std::string msg = code + ": " + desc + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  if (!dest.empty()) msg += " -> '" + dest + "'";
  if (!extra.empty()) msg += " (" + extra + ")";
  Napi::Error err = Napi::Error::New(env, msg);
  Napi::Object o = err.Value();
  o.Set("code", Napi::String::New(env, code));
  o.Set("errno", Napi::Number::New(env, -errnum));
  o.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) o.Set("path", Napi::String::New(env, path));
  if (!dest.empty()) o.Set("dest", Napi::String::New(env, dest));
  return err;
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Value().Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace vhostplug
