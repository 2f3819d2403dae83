// RAII for libuv handles: a handle must be closed with uv_close and freed only in
// the close callback, never with delete while the loop still knows it.
#pragma once
#include <uv.h>

namespace vhostplug {

template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(new T()) {}
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { close(); }

  T* get() const { return h_; }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(h_); }
  // Marks the handle as initialised so close() hands it to uv_close.
  void set_initialised() { initialised_ = true; }
  bool initialised() const { return initialised_; }

  void close() {
    if (h_ == nullptr) return;
    T* h = h_;
    h_ = nullptr;
    if (!initialised_) {
      delete h;
      return;
    }
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* p) { delete reinterpret_cast<T*>(p); });
  }

 private:
  T* h_;
  bool initialised_ = false;
};

}  // namespace vhostplug
