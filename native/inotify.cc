// inotify watcher: inotify_init1(IN_NONBLOCK|IN_CLOEXEC), uv_poll on the main loop,
// batched delivery to JS through MakeCallback. Watch bookkeeping (which wd belongs to
// which directory, sharing, masks) is policy and lives in src/os/inotify.ts.
#include "inotify.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace vhostplug {

namespace {

struct RawEvent {
  int wd;
  uint32_t mask;
  uint32_t cookie;
  std::string name;
};

}  // namespace

Napi::Function Inotify::Define(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
      InstanceMethod<&Inotify::AddWatch>("addWatch"),
      InstanceMethod<&Inotify::RmWatch>("rmWatch"),
  };
  AddLifecycleMethods(props);
  return DefineClass(env, "Inotify", props);
}

Inotify::Inotify(const Napi::CallbackInfo& info) : PolledFd<Inotify>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(env, "The \"onEvents\" argument must be a function");
  CheckEnv(env);
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) throw SystemError(env, errno, "inotify_init1");
  on_events_ = Napi::Persistent(info[0].As<Napi::Function>());
  StartPolling(env, std::move(fd), "vhostplug:inotify");
}

void Inotify::Drain() {
  std::vector<RawEvent> events;
  int read_errno = 0;
  for (int round = 0; round < kMaxReadsPerWake; ++round) {
    ssize_t n = ::read(fd_.get(), buf_, sizeof(buf_));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) read_errno = errno;
      break;
    }
    for (char* p = buf_; p < buf_ + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      // The name is NUL-padded to an aligned length; len 0 means "the watched dir itself".
      events.push_back(
          {ev->wd, ev->mask, ev->cookie, std::string(ev->name, ev->len ? ::strnlen(ev->name, ev->len) : 0)});
      p += sizeof(struct inotify_event) + ev->len;
    }
    // A read that left room for another maximal event drained the queue: skip the EAGAIN read.
    if (static_cast<size_t>(n) + sizeof(struct inotify_event) + NAME_MAX + 1 <= sizeof(buf_)) break;
  }
  if (events.empty() && read_errno == 0) return;

  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    if (read_errno != 0) throw SystemError(env, read_errno, "read", "", "", "inotify");
    Napi::String k_wd = Napi::String::New(env, "wd");
    Napi::String k_mask = Napi::String::New(env, "mask");
    Napi::String k_cookie = Napi::String::New(env, "cookie");
    Napi::String k_name = Napi::String::New(env, "name");
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set(k_wd, Napi::Number::New(env, events[i].wd));
      o.Set(k_mask, Napi::Number::New(env, events[i].mask));
      o.Set(k_cookie, Napi::Number::New(env, events[i].cookie));
      o.Set(k_name, Napi::String::New(env, events[i].name));
      arr.Set(static_cast<uint32_t>(i), o);
    }
    // MakeCallback runs the nextTick/microtask queues afterwards and attributes the
    // call to our async resource, as a Node handle's callback would be.
    on_events_.MakeCallback(Value(), {arr}, *async_);
  } catch (const Napi::Error& e) {
    // No JS frame is below us: hand the exception to process 'uncaughtException'
    // instead of leaving it pending on the env.
    napi_fatal_exception(env, e.Value());
  }
}

Napi::Value Inotify::AddWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "addWatch(path: string, mask: number)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos)
    throw SystemError(env, EINVAL, "inotify_add_watch", path, "", "NUL in path");
  if (closed()) throw SystemError(env, EBADF, "inotify_add_watch", path, "", "watcher is closed");
  int wd = ::inotify_add_watch(fd_.get(), path.c_str(), info[1].As<Napi::Number>().Uint32Value());
  if (wd < 0) throw SystemError(env, errno, "inotify_add_watch", path);
  return Napi::Number::New(env, wd);
}

Napi::Value Inotify::RmWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "rmWatch(wd: number)");
  int wd = info[0].As<Napi::Number>().Int32Value();
  if (closed()) throw SystemError(env, EBADF, "inotify_rm_watch", "", "", "watcher is closed");
  if (::inotify_rm_watch(fd_.get(), wd) != 0)
    throw SystemError(env, errno, "inotify_rm_watch", "", "", "wd " + std::to_string(wd));
  return env.Undefined();
}

static Napi::Value InotifyOpen(const Napi::CallbackInfo& info) {
  AddonData* data = GetAddonData(info.Env());
  return data->inotify_ctor.New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
}

void InitInotify(Napi::Env env, Napi::Object exports, AddonData* data) {
  data->inotify_ctor = Napi::Persistent(Inotify::Define(env));
  exports.Set("inotifyOpen", Napi::Function::New(env, InotifyOpen, "inotifyOpen"));
}

}  // namespace vhostplug
