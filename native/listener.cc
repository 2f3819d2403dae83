// Unix stream listener: socket/bind/listen, uv_poll on the main loop, accept4 until
// EAGAIN (bounded per wake-up), the accepted fds handed to JS in one MakeCallback.
//
// Invariants (test/unit/os-unix-listener.test.ts):
// - every fd accept4 returns is either handed to JS (which then owns it) or closed here;
// - EMFILE/ENFILE stop the poll (a level-triggered readable listener would otherwise
//   spin) and are reported; JS resumes after a pause, as libuv's own back-off would;
// - ECONNABORTED (the peer left before accept) is skipped, not reported.
#include "listener.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace vhostplug {

namespace {

bool FillSunPath(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

}  // namespace

Napi::Function UnixListener::Define(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {InstanceMethod<&UnixListener::Resume>("resume")};
  AddLifecycleMethods(props);
  return DefineClass(env, "UnixListener", props);
}

// new UnixListener(path, backlog, onAccept(fds: number[], error?: Error))
UnixListener::UnixListener(const Napi::CallbackInfo& info) : PolledFd<UnixListener>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsFunction())
    throw Napi::TypeError::New(env, "unixListen(path: string, backlog: number, onAccept: function)");
  CheckEnv(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  sockaddr_un addr;
  if (path.find('\0') != std::string::npos || !FillSunPath(path, &addr))
    throw SystemError(env, EINVAL, "bind", path, "", "a unix socket path holds 1 to 107 bytes, no NUL");

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw SystemError(env, errno, "socket", path);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    throw SystemError(env, errno, "bind", path);
  // From here the socket file is ours: removed again if listening cannot start.
  try {
    if (::listen(fd.get(), backlog > 0 ? backlog : SOMAXCONN) != 0) throw SystemError(env, errno, "listen", path);
    on_accept_ = Napi::Persistent(info[2].As<Napi::Function>());
    StartPolling(env, std::move(fd), "vhostplug:unix-listener");
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

void UnixListener::Drain() {
  std::vector<int> fds;
  int accept_errno = 0;
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fds.push_back(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) accept_errno = errno;
    break;
  }
  if (accept_errno == EMFILE || accept_errno == ENFILE) StopPolling();
  if (fds.empty() && accept_errno == 0) return;

  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    Napi::Array arr = Napi::Array::New(env, fds.size());
    for (size_t i = 0; i < fds.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
    // From here JS owns the fds (it wraps or closes each one).
    fds.clear();
    Napi::Value err = accept_errno != 0 ? SystemError(env, accept_errno, "accept4").Value() : env.Undefined();
    on_accept_.MakeCallback(Value(), {arr, err}, *async_);
  } catch (const Napi::Error& e) {
    for (int fd : fds) ::close(fd);
    // No JS frame is below us: hand the exception to process 'uncaughtException'.
    napi_fatal_exception(env, e.Value());
  }
}

// After an EMFILE/ENFILE pause: poll again.
Napi::Value UnixListener::Resume(const Napi::CallbackInfo& info) {
  int rc = Repoll();
  if (rc != 0) throw SystemError(info.Env(), -rc, "uv_poll_start");
  return info.Env().Undefined();
}

static Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  AddonData* data = GetAddonData(info.Env());
  std::vector<napi_value> args;
  for (size_t i = 0; i < info.Length(); ++i) args.push_back(info[i]);
  return data->unix_listener_ctor.New(args);
}

void InitListener(Napi::Env env, Napi::Object exports, AddonData* data) {
  data->unix_listener_ctor = Napi::Persistent(UnixListener::Define(env));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
}

}  // namespace vhostplug
