// The life cycle shared by the addon's JS objects that own one fd polled for readability
// on the main loop (inotify, the unix listener): registered for the env's cleanup hook,
// kept alive by a self reference while open (like a Node handle: dropping the last JS
// reference must not silently stop it), closed idempotently without calling into JS.
// T (CRTP) provides `void Drain()`, called on every wake-up while open.
#pragma once
#include <napi.h>
#include <uv.h>

#include <memory>
#include <utility>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "unique_fd.h"
#include "uv_handle.h"

namespace vhostplug {

template <typename T>
class PolledFd : public Napi::ObjectWrap<T>, public Closeable {
 public:
  ~PolledFd() override { Release(); }
  void CloseFromCleanup() override { Release(); }

 protected:
  explicit PolledFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info), data_(GetAddonData(info.Env())) {}

  // The JS methods every such object has.
  static void AddLifecycleMethods(std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor>& props) {
    props.push_back(Napi::ObjectWrap<T>::InstanceMethod("close", &PolledFd::Close));
    props.push_back(Napi::ObjectWrap<T>::InstanceMethod("ref", &PolledFd::JsRef));
    props.push_back(Napi::ObjectWrap<T>::InstanceMethod("unref", &PolledFd::JsUnref));
  }

  // Throws unless the environment is still running (call first in the constructor).
  void CheckEnv(Napi::Env env) const {
    if (data_->shutting_down) throw CodedError(env, "ERR_ENV_SHUTTING_DOWN", "the environment is shutting down");
  }

  // Takes `fd`, polls it on the main loop and registers the object; `resource` names the
  // async resource of the callbacks. Throws SystemError (uv_poll_init / uv_poll_start).
  void StartPolling(Napi::Env env, UniqueFd fd, const char* resource) {
    fd_ = std::move(fd);
    int rc = uv_poll_init(data_->loop, poll_.get(), fd_.get());
    if (rc != 0) throw SystemError(env, -rc, "uv_poll_init");
    poll_.set_initialised();
    poll_.get()->data = this;
    rc = Repoll();
    if (rc != 0) throw SystemError(env, -rc, "uv_poll_start");
    async_ = std::make_unique<Napi::AsyncContext>(env, resource, this->Value());
    data_->live.insert(this);
    this->Ref();
    self_ref_ = true;
  }

  // (Re)starts polling; a libuv error code or 0.
  int Repoll() { return closed_ ? 0 : uv_poll_start(poll_.get(), UV_READABLE, &PolledFd::OnPoll); }
  void StopPolling() {
    if (!closed_) uv_poll_stop(poll_.get());
  }
  bool closed() const { return closed_; }

  AddonData* data_;
  UniqueFd fd_;
  std::unique_ptr<Napi::AsyncContext> async_;

 private:
  static void OnPoll(uv_poll_t* handle, int /*status*/, int /*events*/) {
    // A poll error is not acted on here: the syscall in Drain reports the real errno.
    auto* self = static_cast<PolledFd*>(handle->data);
    if (self->closed_ || self->data_->shutting_down) return;
    static_cast<T*>(self)->Drain();
  }

  // Stops polling and closes the fd; idempotent, never calls into JS.
  void Release() {
    if (closed_) return;
    closed_ = true;
    data_->live.erase(this);
    // uv_close takes the fd out of epoll at once, so closing the fd right after is safe.
    poll_.close();
    fd_.reset();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    if (self_ref_) {
      self_ref_ = false;
      this->Unref();
    }
    return info.Env().Undefined();
  }
  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    if (!closed_) uv_ref(poll_.base());
    return info.Env().Undefined();
  }
  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    if (!closed_) uv_unref(poll_.base());
    return info.Env().Undefined();
  }

  UvHandle<uv_poll_t> poll_;
  bool closed_ = false;
  bool self_ref_ = false;
};

}  // namespace vhostplug
