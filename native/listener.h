// A listening AF_UNIX stream socket polled on the main loop that drains its accept
// queue on every wake-up. libuv 1.46 (Node 20) accepts ONE connection per loop turn; when the
// loop turns slowly (a daemon sharing its CPU with ovs-vswitchd under churn) connections
// then wait in the backlog for many turns. Accepted fds go to JS in one call; JS wraps
// each in a net.Socket. Where the socket file lives and who may reach it is policy, in
// src/os/unix-listener.ts.
#pragma once
#include <napi.h>

#include "polled_fd.h"

namespace vhostplug {

class UnixListener : public PolledFd<UnixListener> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit UnixListener(const Napi::CallbackInfo& info);

  // accept4(2) calls per wake-up before yielding to the loop, so a connect flood
  // cannot starve the requests already accepted.
  static constexpr int kMaxAcceptsPerWake = 256;

 private:
  Napi::Value Resume(const Napi::CallbackInfo& info);
  friend class PolledFd<UnixListener>;
  void Drain();

  Napi::FunctionReference on_accept_;
};

}  // namespace vhostplug
