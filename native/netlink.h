// rtnetlink sockets for the TS layer: native does only syscalls and bytes. Messages are
// built and parsed in src/os/netlink.ts; here we open NETLINK_ROUTE sockets (in another
// network namespace through a short-lived dedicated thread), send datagrams (those the
// kernel works on for long from a short-lived dedicated thread too) and deliver received
// datagrams to JS from a uv_poll on the main loop. The same dedicated-thread mechanism
// writes per-netns sysctls (/proc/sys/net resolves against the caller's netns).
//
// Namespace rule (docs/namespaces-and-threads.md): setns(CLONE_NEWNET) changes only the
// calling thread, and a netlink socket keeps the netns it was created in. So setns runs
// only on a std::thread created for that one socket, which exits right after; never on
// the main thread or a libuv pool thread (those serve fs and getaddrinfo for everybody).
#pragma once
#include <cstdint>
#include <memory>

#include "addon.h"
#include "unique_fd.h"
#include "uv_handle.h"

namespace vhostplug {

// Outcome of opening a NETLINK_ROUTE socket; err/syscall describe the failing step.
struct RouteSocketResult {
  UniqueFd fd;
  uint32_t port_id = 0;
  int err = 0;
  const char* syscall = nullptr;
};

// Opens a non-blocking NETLINK_ROUTE socket in the calling thread's netns, with extended
// ACKs on and capped error replies, bound to a kernel-assigned port id.
RouteSocketResult OpenRouteSocket();

// One open NETLINK_ROUTE socket as seen from JS: send(bytes), sendOnThread(bytes),
// close(), ref(), unref(), portId. Received datagrams go to onMessages(Buffer[]), socket
// errors to onError(err).
//
// The kernel handles an rtnetlink request inside sendto, so send() blocks the main loop
// for as long as the request takes. Most take microseconds; RTM_DELLINK takes 20-40 ms
// (unregister_netdevice and RCU grace periods), creating a link up to 8 ms. sendOnThread() does the sendto on a
// short-lived dedicated thread (through a dup of the fd) and returns a promise of the
// sendto's outcome; the reply arrives through the uv_poll reader like any other.
class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket>, public Closeable {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NetlinkSocket(const Napi::CallbackInfo& info);
  ~NetlinkSocket() override;

  // Takes the opened socket and starts polling it on the main loop.
  void Attach(UniqueFd fd, uint32_t port_id);
  // Drops the keep-alive reference taken while the socket was being opened.
  void AbandonOpen();
  void CloseFromCleanup() override;

 private:
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendOnThread(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value RefHandle(const Napi::CallbackInfo& info);
  Napi::Value UnrefHandle(const Napi::CallbackInfo& info);
  Napi::Value GetPortId(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void OnReadable(int status);
  void ReportError(int errnum, const char* syscall);
  void CallFromLoop(const Napi::FunctionReference& fn, napi_value arg);
  // Idempotent; with release_ref the keep-alive reference is released too.
  void CloseNow(bool release_ref);

  AddonData* data_;
  UniqueFd fd_;
  UvHandle<uv_poll_t> poll_;
  Napi::FunctionReference on_messages_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_;
  uint32_t port_id_ = 0;
  bool attached_ = false;
  bool closed_ = false;
  bool kept_alive_ = false;
  bool refed_ = true;
};

}  // namespace vhostplug
