// A raw inotify fd polled on the main libuv loop. JS gets every event of a wake-up in
// one call, as plain {wd, mask, cookie, name} records; IN_Q_OVERFLOW (wd -1) is
// delivered like any other event so the TS layer can rescan instead of going stale.
#pragma once
#include <napi.h>
#include <sys/inotify.h>
#include <uv.h>

#include "polled_fd.h"

namespace vhostplug {

class Inotify : public PolledFd<Inotify> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Inotify(const Napi::CallbackInfo& info);

  // One read(2) fills at most this many bytes; 64 KiB holds ~4000 short-named events.
  static constexpr size_t kBufferBytes = 64 * 1024;
  // Reads per wake-up before yielding to the loop, so a flood cannot starve it.
  static constexpr int kMaxReadsPerWake = 8;

 private:
  Napi::Value AddWatch(const Napi::CallbackInfo& info);
  Napi::Value RmWatch(const Napi::CallbackInfo& info);
  friend class PolledFd<Inotify>;
  void Drain();

  Napi::FunctionReference on_events_;
  alignas(struct inotify_event) char buf_[kBufferBytes];
};

}  // namespace vhostplug
