// rtnetlink sockets: open (optionally inside another netns, on a dedicated thread), send
// (slow requests from a dedicated thread too), and receive on the main loop. See
// netlink.h for the contract and the namespace rule.
#include "netlink.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "errors.h"

namespace vhostplug {

namespace {

// Large enough that a burst of ACKs for many in-flight requests (or a dump) is not
// dropped with ENOBUFS; the kernel caps it at net.core.rmem_max without privileges.
constexpr int kReceiveBufferBytes = 1 << 20;
// Datagrams handed to JS per poll wake-up, so one busy socket cannot starve the loop.
constexpr int kMaxDatagramsPerWake = 64;

RouteSocketResult Failed(int err, const char* syscall) {
  RouteSocketResult r;
  r.err = err;
  r.syscall = syscall;
  return r;
}

// False while a worker is being terminated: napi calls that may run JS fail then, and
// node-addon-api turns such a failure into a fatal error, so callbacks from the loop or
// from a netns thread check first and drop their work (the env is going away anyway).
bool CanCallIntoJs(napi_env env) {
  napi_value obj;
  napi_value undef;
  if (napi_create_object(env, &obj) != napi_ok || napi_get_undefined(env, &undef) != napi_ok) return false;
  return napi_set_named_property(env, obj, "probe", undef) == napi_ok;
}

// sendto() one datagram to the kernel (port 0), restarting on EINTR. For rtnetlink the
// kernel handles the request inside this call, so it blocks as long as the request does.
ssize_t SendToKernel(int fd, const uint8_t* data, size_t len) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  return n;
}

// Per-environment state of this concern: the class constructor for netlinkOpen.
struct NetlinkEnv {
  Napi::FunctionReference ctor;
};

// Work for a dedicated thread: blocking syscalls (setns, an rtnetlink request the kernel
// works through for tens of ms) that must keep off the main loop and off the libuv pool.
// Owned by its thread until handed to the main thread through the thread-safe function;
// holds nothing JS-side that would be unsafe to destroy off the main thread (a Deferred is
// a plain handle).
struct ThreadJob;
void OnThreadJobDone(Napi::Env env, Napi::Function, void*, ThreadJob* job);
using JobTsfn = Napi::TypedThreadSafeFunction<void, ThreadJob, OnThreadJobDone>;

// Whether the job's thread-safe function still exists. Node frees a thread-safe function
// when its env is torn down even if a thread still holds it, so the thread checks this
// (under the lock, which the finaliser also takes) before touching it.
struct TsfnGate {
  std::mutex mu;
  bool open = true;
};

struct ThreadJob {
  std::shared_ptr<TsfnGate> gate = std::make_shared<TsfnGate>();
  Napi::Promise::Deferred deferred;
  JobTsfn tsfn;
  int err = 0;
  const char* syscall = nullptr;
  explicit ThreadJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  virtual ~ThreadJob() = default;
  // On the dedicated thread. Sets err/syscall on failure and closes its fds before returning.
  virtual void Run() = 0;
  // On the main thread: resolve or reject.
  virtual void Settle(Napi::Env env) = 0;
  void Fail(int e, const char* sc) {
    err = e;
    syscall = sc;
  }
};

// Work that must run inside another netns: Run() enters it first.
struct NetnsJob : ThreadJob {
  UniqueFd ns_fd;
  std::string ns_path;
  using ThreadJob::ThreadJob;
  // On the dedicated thread, after setns succeeded. Sets err/syscall on failure.
  virtual void RunInNetns() = 0;
  void Run() override {
    if (setns(ns_fd.get(), CLONE_NEWNET) != 0) {
      Fail(errno, "setns");
    } else {
      RunInNetns();
    }
    ns_fd.reset();
  }
};

// Opens the route socket inside the netns.
struct OpenSocketJob : NetnsJob {
  NetlinkSocket* socket;
  RouteSocketResult result;
  OpenSocketJob(Napi::Env env, NetlinkSocket* s) : NetnsJob(env), socket(s) {}
  void RunInNetns() override {
    result = OpenRouteSocket();
    if (result.err) Fail(result.err, result.syscall);
  }
  void Settle(Napi::Env env) override {
    if (err != 0) {
      socket->AbandonOpen();
      deferred.Reject(SystemError(env, err, syscall, ns_path).Value());
      return;
    }
    socket->Attach(std::move(result.fd), result.port_id);
    deferred.Resolve(socket->Value());
  }
};

// Writes one per-netns sysctl: /proc/sys/net resolves against the netns of the opening
// thread, so only a thread inside the netns can reach the pod's values.
struct WriteSysctlJob : NetnsJob {
  std::string file;
  std::string value;
  WriteSysctlJob(Napi::Env env, std::string f, std::string v)
      : NetnsJob(env), file(std::move(f)), value(std::move(v)) {}
  void RunInNetns() override {
    UniqueFd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return Fail(errno, "open");
    ssize_t n;
    do {
      n = write(fd.get(), value.data(), value.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Fail(errno, "write");
    if (static_cast<size_t>(n) != value.size()) return Fail(EIO, "write");
  }
  void Settle(Napi::Env env) override {
    if (err != 0) {
      // The failing file is the interesting path unless setns itself failed.
      const std::string& where = std::string(syscall) == "setns" ? ns_path : file;
      deferred.Reject(SystemError(env, err, syscall, where).Value());
      return;
    }
    deferred.Resolve(env.Undefined());
  }
};

// Sends one datagram whose processing may block in the kernel (e.g. RTM_DELLINK runs
// unregister_netdevice and waits for RCU grace periods inside sendto). No setns: the socket already
// belongs to its netns, whichever thread sends. The job owns a dup of the socket fd, so
// JS may close the socket meanwhile; the reply still goes to the main loop's uv_poll.
struct SendJob : ThreadJob {
  UniqueFd fd;
  std::vector<uint8_t> bytes;
  SendJob(Napi::Env env, UniqueFd f, const uint8_t* data, size_t len)
      : ThreadJob(env), fd(std::move(f)), bytes(data, data + len) {}
  void Run() override {
    if (SendToKernel(fd.get(), bytes.data(), bytes.size()) < 0) Fail(errno, "sendto");
    fd.reset();  // the socket may be closed already: this copy was the last reference
  }
  void Settle(Napi::Env env) override {
    if (err != 0) {
      deferred.Reject(SystemError(env, err, syscall).Value());
      return;
    }
    deferred.Resolve(env.Undefined());
  }
};

// Runs on the main thread with the dedicated thread's result.
void OnThreadJobDone(Napi::Env env, Napi::Function, void*, ThreadJob* raw) {
  std::unique_ptr<ThreadJob> job(raw);
  if (env == nullptr) return;  // environment torn down: the fds close with the job
  Napi::HandleScope scope(env);
  if (!CanCallIntoJs(env)) return;
  try {
    job->Settle(env);
  } catch (const Napi::Error&) {
    // Only reachable when the env stopped running JS after the check; nothing to tell.
  }
}

// The dedicated thread: do the one job, hand it over, exit. A netns job's thread dies in
// the foreign netns, so nothing else ever runs there.
void DedicatedThread(ThreadJob* job) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals belong to the main thread
  job->Run();
  std::shared_ptr<TsfnGate> gate = job->gate;
  JobTsfn tsfn = job->tsfn;
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    if (gate->open) {
      if (tsfn.BlockingCall(job) == napi_ok) job = nullptr;  // the main thread owns it now
      tsfn.Release();
    }
  }
  delete job;  // env gone or closing: nobody will take it
}

// Starts `job` on a new dedicated thread. Returns the job's promise.
Napi::Promise StartDedicatedThread(Napi::Env env, std::unique_ptr<ThreadJob> job) {
  Napi::Promise promise = job->deferred.Promise();
  auto* gate_ref = new std::shared_ptr<TsfnGate>(job->gate);
  job->tsfn = JobTsfn::New(
      env, "vhostplug:dedicated-thread", 0, 1, nullptr,
      [](Napi::Env, std::shared_ptr<TsfnGate>* g, void*) {
        {
          std::lock_guard<std::mutex> lock((*g)->mu);
          (*g)->open = false;
        }
        delete g;
      },
      gate_ref);
  try {
    std::thread(DedicatedThread, job.get()).detach();
    job.release();  // the thread owns it now
  } catch (const std::system_error& e) {
    job->tsfn.Release();
    job->Fail(e.code().value() ? e.code().value() : EAGAIN, "pthread_create");
    job->Settle(env);
  }
  return promise;
}

// Starts `job` on a new dedicated thread inside the netns open as ns_fd (dup'ed here, so
// the caller may close its fd as soon as this returns). Returns the job's promise.
Napi::Promise RunInNetns(Napi::Env env, std::unique_ptr<NetnsJob> job, int ns_fd) {
  int dup_fd = fcntl(ns_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    Napi::Promise promise = job->deferred.Promise();
    job->Fail(errno, "fcntl");
    job->Settle(env);
    return promise;
  }
  job->ns_fd.reset(dup_fd);
  return StartDedicatedThread(env, std::move(job));
}

// netlinkOpen(nsFd, nsPath, onMessages, onError) -> Promise<NetlinkSocket>
// nsFd < 0 opens in the process's own netns, directly on the main thread (no setns).
// Otherwise nsFd is an open netns file (we dup it; the caller may close it afterwards).
Napi::Value NetlinkOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* ne = static_cast<NetlinkEnv*>(info.Data());
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsFunction() ||
      !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "netlinkOpen(nsFd: number, nsPath: string, onMessages, onError)");
  }
  int ns_fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Object obj = ne->ctor.New({info[2], info[3]});
  auto job = std::make_unique<OpenSocketJob>(env, NetlinkSocket::Unwrap(obj));
  job->ns_path = info[1].As<Napi::String>().Utf8Value();
  if (ns_fd >= 0) return RunInNetns(env, std::move(job), ns_fd);
  Napi::Promise promise = job->deferred.Promise();
  job->RunInNetns();  // our own netns: no thread, no setns
  job->Settle(env);
  return promise;
}

// netnsWriteSysctl(nsFd, nsPath, name, value) -> Promise<void>
// Writes /proc/sys/net/<name> as seen from inside the netns. `name` is relative to
// /proc/sys/net ("ipv6/conf/all/disable_ipv6"); no "..", no absolute paths.
Napi::Value NetnsWriteSysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsString() || !info[3].IsString()) {
    throw Napi::TypeError::New(env, "netnsWriteSysctl(nsFd: number, nsPath: string, name: string, value: string)");
  }
  std::string name = info[2].As<Napi::String>().Utf8Value();
  if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos || name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, "netnsWriteSysctl: name must be relative to /proc/sys/net without '..'");
  }
  auto job = std::make_unique<WriteSysctlJob>(env, "/proc/sys/net/" + name, info[3].As<Napi::String>().Utf8Value());
  job->ns_path = info[1].As<Napi::String>().Utf8Value();
  return RunInNetns(env, std::move(job), info[0].As<Napi::Number>().Int32Value());
}

}  // namespace

RouteSocketResult OpenRouteSocket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return Failed(errno, "socket");
  UniqueFd owned(fd);
  int one = 1;
  // Best effort: kernels before 4.12 lack extended ACKs; errors then carry no text.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  // Error replies without a copy of our request: we match by sequence number anyway.
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  int rcvbuf = kReceiveBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return Failed(errno, "bind");
  socklen_t len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return Failed(errno, "getsockname");
  RouteSocketResult r;
  r.fd = std::move(owned);
  r.port_id = local.nl_pid;
  return r;
}

// ---- NetlinkSocket ----

Napi::Function NetlinkSocket::Define(Napi::Env env) {
  return DefineClass(env, "NetlinkSocket",
                     {
                         InstanceMethod<&NetlinkSocket::Send>("send"),
                         InstanceMethod<&NetlinkSocket::SendOnThread>("sendOnThread"),
                         InstanceMethod<&NetlinkSocket::Close>("close"),
                         InstanceMethod<&NetlinkSocket::RefHandle>("ref"),
                         InstanceMethod<&NetlinkSocket::UnrefHandle>("unref"),
                         InstanceAccessor<&NetlinkSocket::GetPortId>("portId"),
                     });
}

NetlinkSocket::NetlinkSocket(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NetlinkSocket>(info), data_(GetAddonData(info.Env())) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "NetlinkSocket is created by netlinkOpen()");
  }
  on_messages_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_ = std::make_unique<Napi::AsyncContext>(env, "vhostplug:netlink");
  // Alive until closed, even if JS drops it while the open is in flight.
  Ref();
  kept_alive_ = true;
}

NetlinkSocket::~NetlinkSocket() { CloseNow(false); }

void NetlinkSocket::Attach(UniqueFd fd, uint32_t port_id) {
  fd_ = std::move(fd);
  port_id_ = port_id;
  attached_ = true;
  int rc = uv_poll_init(data_->loop, poll_.get(), fd_.get());
  if (rc != 0) {
    ReportError(-rc, "uv_poll_init");
    CloseNow(true);
    return;
  }
  poll_.set_initialised();
  poll_.get()->data = this;
  uv_poll_start(poll_.get(), UV_READABLE, OnPoll);
  if (!refed_) uv_unref(poll_.base());
  data_->live.insert(this);
}

void NetlinkSocket::AbandonOpen() {
  closed_ = true;
  if (kept_alive_) {
    kept_alive_ = false;
    Unref();
  }
}

void NetlinkSocket::CloseFromCleanup() {
  // Env teardown: release fd and handle only; JS references go with the env.
  kept_alive_ = false;
  CloseNow(false);
}

void NetlinkSocket::CloseNow(bool release_ref) {
  if (!closed_) {
    closed_ = true;
    if (attached_) {
      poll_.close();
      fd_.reset();
      if (!data_->shutting_down) data_->live.erase(this);
    }
  }
  if (release_ref && kept_alive_) {
    kept_alive_ = false;
    Unref();
  }
}

Napi::Value NetlinkSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "send(Uint8Array)");
  if (closed_ || !attached_) throw SystemError(env, EBADF, "sendto");
  auto bytes = info[0].As<Napi::Uint8Array>();
  if (SendToKernel(fd_.get(), bytes.Data(), bytes.ByteLength()) < 0) throw SystemError(env, errno, "sendto");
  return env.Undefined();
}

Napi::Value NetlinkSocket::SendOnThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "sendOnThread(Uint8Array)");
  if (closed_ || !attached_) throw SystemError(env, EBADF, "sendto");
  // The thread sends through its own copy of the fd: close() on this socket closes ours
  // only, and the kernel socket lives on until the thread's sendto has returned.
  int dup_fd = fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) throw SystemError(env, errno, "fcntl");
  auto bytes = info[0].As<Napi::Uint8Array>();
  return StartDedicatedThread(env, std::make_unique<SendJob>(env, UniqueFd(dup_fd), bytes.Data(), bytes.ByteLength()));
}

Napi::Value NetlinkSocket::Close(const Napi::CallbackInfo& info) {
  CloseNow(true);
  return info.Env().Undefined();
}

Napi::Value NetlinkSocket::RefHandle(const Napi::CallbackInfo& info) {
  refed_ = true;
  if (attached_ && !closed_) uv_ref(poll_.base());
  return info.Env().Undefined();
}

Napi::Value NetlinkSocket::UnrefHandle(const Napi::CallbackInfo& info) {
  refed_ = false;
  if (attached_ && !closed_) uv_unref(poll_.base());
  return info.Env().Undefined();
}

Napi::Value NetlinkSocket::GetPortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_id_); }

void NetlinkSocket::OnPoll(uv_poll_t* handle, int status, int) {
  static_cast<NetlinkSocket*>(handle->data)->OnReadable(status);
}

void NetlinkSocket::CallFromLoop(const Napi::FunctionReference& fn, napi_value arg) {
  // The raw call: node-addon-api's MakeCallback turns the termination of a worker during
  // the callback into a fatal error. A callback that throws becomes an uncaughtException,
  // as with Node's own handles; a terminating worker just drops it.
  napi_env env = fn.Env();
  napi_value result;
  if (napi_make_callback(env, *async_, Value(), fn.Value(), 1, &arg, &result) == napi_ok) return;
  napi_value exc;
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && CanCallIntoJs(env)) napi_fatal_exception(env, exc);
}

void NetlinkSocket::ReportError(int errnum, const char* syscall) {
  if (data_->shutting_down) return;
  Napi::Env env = on_error_.Env();
  Napi::HandleScope scope(env);
  if (!CanCallIntoJs(env)) return;
  try {
    CallFromLoop(on_error_, SystemError(env, errnum, syscall).Value());
  } catch (const Napi::Error&) {
    // Building the error failed: the env stopped running JS after the check.
  }
}

void NetlinkSocket::OnReadable(int status) {
  if (closed_ || data_->shutting_down) return;
  if (status < 0) {
    // libuv reports a socket error (POLLERR) as UV_EBADF and stops polling. For netlink
    // that error is usually ENOBUFS (the kernel dropped replies): report the real errno
    // and keep going, the socket itself is fine.
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (status == UV_EBADF && getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
      uv_poll_start(poll_.get(), UV_READABLE, OnPoll);
      ReportError(soerr, "recvmsg");
    } else {
      ReportError(-status, "uv_poll");
    }
    return;
  }
  Napi::Env env = on_messages_.Env();
  Napi::HandleScope scope(env);
  if (!CanCallIntoJs(env)) return;
  int overrun = 0;
  int fatal = 0;
  try {
    std::vector<Napi::Value> datagrams;
    for (int i = 0; i < kMaxDatagramsPerWake; i++) {
      // Peek with MSG_TRUNC for the true datagram size, then read it straight into a Buffer.
      ssize_t size = recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (size < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {  // the kernel dropped replies; the socket stays usable
          overrun = ENOBUFS;
          continue;
        }
        fatal = errno;
        break;
      }
      auto buf = Napi::Buffer<uint8_t>::New(env, size > 0 ? static_cast<size_t>(size) : 1);
      ssize_t n;
      do {
        n = recv(fd_.get(), buf.Data(), buf.Length(), MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fatal = errno;
        break;
      }
      if (n > 0) datagrams.push_back(buf);
    }
    if (!datagrams.empty()) {
      Napi::Array arr = Napi::Array::New(env, datagrams.size());
      for (size_t i = 0; i < datagrams.size(); i++) arr.Set(static_cast<uint32_t>(i), datagrams[i]);
      CallFromLoop(on_messages_, arr);
    }
  } catch (const Napi::Error&) {
    return;  // a napi call failed: the env stopped running JS after the check
  }
  if (closed_) return;  // closed from the callback
  if (overrun) ReportError(overrun, "recvmsg");
  if (fatal && !closed_) ReportError(fatal, "recvmsg");
}

void InitNetlink(Napi::Env env, Napi::Object exports, AddonData*) {
  auto* ne = new NetlinkEnv();
  ne->ctor = Napi::Persistent(NetlinkSocket::Define(env));
  env.AddCleanupHook([ne]() { delete ne; });
  exports.Set("netlinkOpen", Napi::Function::New(env, NetlinkOpen, "netlinkOpen", ne));
  exports.Set("netnsWriteSysctl", Napi::Function::New(env, NetnsWriteSysctl, "netnsWriteSysctl"));
}

}  // namespace vhostplug
