// A raw inotify fd polled on the main libuv loop. JS gets every event of a wake-up in
// one call, as plain {wd, mask, cookie, name} records; IN_Q_OVERFLOW (wd -1) is
// delivered like any other event so the TS layer can rescan instead of going stale.
#pragma once
#include <napi.h>
#include <sys/inotify.h>
#include <uv.h>

#include <memory>

#include "addon.h"
#include "unique_fd.h"
#include "uv_handle.h"

namespace vhostplug {

class Inotify : public Napi::ObjectWrap<Inotify>, public Closeable {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Inotify(const Napi::CallbackInfo& info);
  ~Inotify() override;
  void CloseFromCleanup() override;

  // One read(2) fills at most this many bytes; 64 KiB holds ~4000 short-named events.
  static constexpr size_t kBufferBytes = 64 * 1024;
  // Reads per wake-up before yielding to the loop, so a flood cannot starve it.
  static constexpr int kMaxReadsPerWake = 8;

 private:
  Napi::Value AddWatch(const Napi::CallbackInfo& info);
  Napi::Value RmWatch(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value JsRef(const Napi::CallbackInfo& info);
  Napi::Value JsUnref(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Drain();
  // Stops polling and closes the fd; idempotent, never calls into JS.
  void Release();

  AddonData* data_;
  UniqueFd fd_;
  UvHandle<uv_poll_t> poll_;
  Napi::FunctionReference on_events_;
  std::unique_ptr<Napi::AsyncContext> async_;
  bool closed_ = false;
  // The JS object is kept alive (strong self reference) while the fd is open, like a
  // Node handle: dropping the last JS reference must not silently stop the watch.
  bool self_ref_ = false;
  alignas(struct inotify_event) char buf_[kBufferBytes];
};

}  // namespace vhostplug
