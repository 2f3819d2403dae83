// OVSDB stream transport; the event contract is in stream.h, the framing in json_scanner.h.
#include "stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "errors.h"
#include "json_scanner.h"
#include "unique_fd.h"
#include "uv_handle.h"

namespace vhostplug {

namespace {

// One read(2) into this much; a 1 MiB monitor reply is 16 reads.
constexpr size_t kReadChunk = 64 * 1024;
// Reads per poll wake-up, as OVS's jsonrpc receive loop (50): bounded so one busy peer
// cannot starve the rest of the loop; level-triggered polling brings us back.
constexpr int kMaxReadsPerPoll = 50;
// Output buffers above this capacity are released once drained.
constexpr size_t kKeepOutputCapacity = 1024 * 1024;
// Sanity bound for maxDepth (the scanner keeps one byte per level).
constexpr double kMaxDepthLimit = 1 << 20;
// V8's longest string on 64-bit (buffer.constants.MAX_STRING_LENGTH): a message of at
// most this many UTF-8 bytes always fits in a JS string.
constexpr double kMaxMessageLimit = (1 << 29) - 24;

// Reads RawStreamOptions { maxMessageBytes, maxDepth }.
ScanLimits LimitsArg(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "The \"opts\" argument must be an object");
  Napi::Object o = v.As<Napi::Object>();
  ScanLimits lim;
  Napi::Value bytes = o.Get("maxMessageBytes");
  if (!bytes.IsUndefined()) {
    double d = bytes.IsNumber() ? bytes.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 2 && d <= kMaxMessageLimit) || std::floor(d) != d)
      throw Napi::RangeError::New(env, "opts.maxMessageBytes must be an integer from 2 to 536870888");
    lim.max_message_bytes = static_cast<size_t>(d);
  }
  Napi::Value depth = o.Get("maxDepth");
  if (!depth.IsUndefined()) {
    double d = depth.IsNumber() ? depth.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 1 && d <= kMaxDepthLimit) || std::floor(d) != d)
      throw Napi::RangeError::New(env, "opts.maxDepth must be an integer from 1 to 1048576");
    lim.max_depth = static_cast<uint32_t>(d);
  }
  return lim;
}

Napi::Error FramingError(Napi::Env env, const JsonScanner& scanner) {
  return CodedError(env, scanner.error_code(), scanner.error_message());
}

// Collects the messages of one batch of reads into a JS array.
class ArraySink : public MessageSink {
 public:
  explicit ArraySink(Napi::Env env) : env_(env) {}
  void OnMessage(const char* data, size_t len) override {
    if (array_.IsEmpty()) array_ = Napi::Array::New(env_);
    array_.Set(count_++, Napi::String::New(env_, data, len));
  }
  uint32_t count() const { return count_; }
  Napi::Array array() const { return array_; }

 private:
  Napi::Env env_;
  Napi::Array array_;
  uint32_t count_ = 0;
};

// --- jsonFramer: the scanner on its own, for tests -------------------------------------

class Framer : public Napi::ObjectWrap<Framer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "JsonFramer",
                       {InstanceMethod<&Framer::Feed>("feed"), InstanceMethod<&Framer::Pending>("pending")});
  }
  explicit Framer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Framer>(info), scanner_(LimitsArg(info.Env(), info[0])) {}

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "The \"chunk\" argument must be a Uint8Array");
    Napi::Uint8Array chunk = info[0].As<Napi::Uint8Array>();
    ArraySink sink(env);
    if (!scanner_.Feed(reinterpret_cast<const char*>(chunk.Data()), chunk.ByteLength(), sink))
      throw FramingError(env, scanner_);
    return sink.count() > 0 ? Napi::Value(sink.array()) : Napi::Value(Napi::Array::New(env));
  }
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(scanner_.pending()));
  }

  JsonScanner scanner_;
};

// --- the stream ---------------------------------------------------------------------------

class Stream : public Napi::ObjectWrap<Stream>, public Closeable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "OvsdbStream",
                       {InstanceMethod<&Stream::JsWrite>("write"), InstanceMethod<&Stream::JsClose>("close"),
                        InstanceMethod<&Stream::JsRef>("ref"), InstanceMethod<&Stream::JsUnref>("unref")});
  }

  explicit Stream(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Stream>(info), env_(info.Env()), data_(GetAddonData(info.Env())) {}

  ~Stream() override {
    Unregister();
    ReleaseResources();
  }

  // Validates the arguments, creates the socket and starts the non-blocking connect.
  // Throws (TypeError, RangeError, SystemError) before anything is registered.
  void Start(Napi::Value cbv, const sockaddr* addr, socklen_t addrlen, ScanLimits limits, std::string path,
             std::string address, int port) {
    Napi::Env env = cbv.Env();
    if (!cbv.IsObject()) throw Napi::TypeError::New(env, "The \"callbacks\" argument must be an object");
    Napi::Object cb = cbv.As<Napi::Object>();
    on_connect_ = CallbackArg(cb, "onConnect");
    on_messages_ = CallbackArg(cb, "onMessages");
    on_error_ = CallbackArg(cb, "onError");
    on_close_ = CallbackArg(cb, "onClose");
    scanner_ = std::make_unique<JsonScanner>(limits);
    path_ = std::move(path);
    address_ = std::move(address);
    port_ = port;

    fd_.reset(::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) throw SystemError(env, errno, "socket", path_);
    if (addr->sa_family != AF_UNIX) {
      // Requests are small and latency-bound; never wait for Nagle.
      int one = 1;
      setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = uv_poll_init(data_->loop, poll_.get(), fd_.get());
    if (rc != 0) {
      fd_.reset();
      throw SystemError(env, -rc, "uv_poll_init", path_);
    }
    poll_.set_initialised();
    poll_.get()->data = this;
    uv_idle_init(data_->loop, idle_.get());
    idle_.set_initialised();
    idle_.get()->data = this;
    read_buf_.reset(new char[kReadChunk]);
    async_ = std::make_unique<Napi::AsyncContext>(env, "vhostplug:OvsdbStream", Value());

    // From here on the stream is live: keep the JS object (and so this) alive until
    // onClose, and let the env cleanup hook close it.
    Ref();
    data_->live.insert(this);
    registered_ = true;
    state_ = State::kConnecting;

    do {
      rc = ::connect(fd_.get(), addr, addrlen);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      Defer(0);  // connected at once (usual for unix sockets): report it next turn
    } else if (errno == EINPROGRESS) {
      SetPollEvents(UV_WRITABLE);
    } else {
      Defer(errno);  // e.g. ENOENT, ECONNREFUSED: reported through onError like any other
    }
  }

  void CloseFromCleanup() override {
    // The environment is going away: release everything, call no JS.
    state_ = State::kClosed;
    registered_ = false;  // the cleanup hook clears data->live itself
    ReleaseResources();
  }

 private:
  enum class State { kIdle, kConnecting, kOpen, kClosed };

  static Napi::FunctionReference CallbackArg(Napi::Object cb, const char* name) {
    Napi::Value v = cb.Get(name);
    if (!v.IsFunction()) throw Napi::TypeError::New(cb.Env(), std::string("callbacks.") + name + " must be a function");
    return Napi::Persistent(v.As<Napi::Function>());
  }

  // --- JS methods -----------------------------------------------------------------------

  Napi::Value JsWrite(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString())
      throw Napi::TypeError::New(env, "The \"text\" argument must be a string");
    if (state_ != State::kConnecting && state_ != State::kOpen) return env.Undefined();  // closed: dropped
    // Encode straight into the output buffer (no temporary std::string).
    size_t len = 0;
    napi_get_value_string_utf8(env, info[0], nullptr, 0, &len);
    const size_t old = out_.size();
    out_.resize(old + len + 1);
    size_t copied = 0;
    napi_get_value_string_utf8(env, info[0], &out_[old], len + 1, &copied);
    out_.resize(old + copied);
    if (state_ == State::kOpen) ArmFlush();
    return env.Undefined();
  }

  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    if (state_ == State::kConnecting || state_ == State::kOpen) {
      // Drop the socket now; onClose follows on the next loop turn, as node:net does.
      ReleaseSocket();
      state_ = State::kClosed;
      close_pending_ = true;
      deferred_ = false;
      StartIdle();
    }
    return info.Env().Undefined();
  }

  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    refed_ = true;
    ApplyRef();
    return info.Env().Undefined();
  }

  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    refed_ = false;
    ApplyRef();
    return info.Env().Undefined();
  }

  // --- loop callbacks ---------------------------------------------------------------------

  // No C++ exception may unwind into libuv: one that escapes (e.g. V8 refusing a string)
  // becomes the process's uncaughtException, as a throw in a node:net listener would.
  static void OnPoll(uv_poll_t* h, int status, int events) {
    Stream* self = static_cast<Stream*>(h->data);
    try {
      self->HandlePoll(status, events);
    } catch (const Napi::Error& e) {
      Napi::HandleScope scope(self->env_);
      napi_fatal_exception(self->env_, e.Value());
    }
  }
  static void OnIdle(uv_idle_t* h) {
    Stream* self = static_cast<Stream*>(h->data);
    try {
      self->HandleIdle();
    } catch (const Napi::Error& e) {
      Napi::HandleScope scope(self->env_);
      napi_fatal_exception(self->env_, e.Value());
    }
  }

  void HandlePoll(int status, int events) {
    Napi::HandleScope scope(env_);
    Napi::Object self = Value();  // a local handle: no GC of this object mid-callback
    (void)self;
    if (state_ == State::kConnecting) {
      // libuv reports POLLERR as UV_EBADF; the real outcome is in SO_ERROR either way.
      int err = SocketError();
      ConnectDone(err == 0 && status < 0 ? -status : err);
      return;
    }
    if (state_ != State::kOpen) return;
    if (status < 0) {
      int err = SocketError();
      Fail(StreamError(err != 0 ? err : -status, "read"));
      return;
    }
    if (events & UV_READABLE) ReadAvailable();
    if (state_ == State::kOpen && (events & UV_WRITABLE)) Flush();
  }

  void HandleIdle() {
    Napi::HandleScope scope(env_);
    Napi::Object self = Value();
    (void)self;
    uv_idle_stop(idle_.get());
    if (close_pending_) {
      close_pending_ = false;
      FinishClose();
      return;
    }
    if (deferred_) {
      deferred_ = false;
      ConnectDone(deferred_errno_);
      if (state_ != State::kOpen) return;
    }
    if (state_ == State::kOpen) Flush();
  }

  // --- connect, read, write -----------------------------------------------------------------

  // The pending error of the socket (SO_ERROR), 0 if none.
  int SocketError() const {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
  }

  void Defer(int err) {
    deferred_ = true;
    deferred_errno_ = err;
    StartIdle();
  }

  void ConnectDone(int err) {
    if (err != 0) {
      Fail(StreamError(err, "connect"));
      return;
    }
    state_ = State::kOpen;
    SetPollEvents(UV_READABLE);
    Call(on_connect_, {});
    // Anything written before or during onConnect leaves in one send.
    if (state_ == State::kOpen && out_off_ < out_.size()) Flush();
  }

  void ReadAvailable() {
    ArraySink sink(env_);
    bool framing_error = false;
    bool eof = false;
    int read_errno = 0;
    for (int k = 0; k < kMaxReadsPerPoll; k++) {
      ssize_t n = ::recv(fd_.get(), read_buf_.get(), kReadChunk, 0);
      if (n > 0) {
        if (!scanner_->Feed(read_buf_.get(), static_cast<size_t>(n), sink)) {
          framing_error = true;
          break;
        }
        // A short read drained the socket; skip the recv that would say EAGAIN.
        if (static_cast<size_t>(n) < kReadChunk) break;
        continue;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) read_errno = errno;
      break;
    }
    if (sink.count() > 0) {
      Call(on_messages_, {sink.array()});
      if (state_ != State::kOpen) return;  // closed from onMessages
      // Requests written in reaction to these messages (microtasks included: they ran
      // when the callback returned) leave now, in one send, not a loop turn later.
      if (!framing_error && out_off_ < out_.size() && !want_writable_) Flush();
    }
    if (framing_error) {
      Fail(FramingError(env_, *scanner_));
    } else if (read_errno != 0) {
      Fail(StreamError(read_errno, "read"));
    } else if (eof) {
      if (scanner_->in_message()) {
        Fail(CodedError(env_, "EOVSDBFRAME",
                        "OVSDB framing error: connection closed by the peer inside a message (" +
                            std::to_string(scanner_->pending()) + " bytes pending)"));
      } else {
        ReleaseSocket();
        state_ = State::kClosed;
        FinishClose();
      }
    }
  }

  void ArmFlush() {
    // Writes made in this loop turn are flushed together from the idle handle; while the
    // kernel buffer is full, UV_WRITABLE drives the flush instead.
    if (!want_writable_) StartIdle();
  }

  void Flush() {
    while (out_off_ < out_.size()) {
      ssize_t n = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
      if (n > 0) {
        out_off_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Fail(StreamError(n < 0 ? errno : EIO, "write"));
      return;
    }
    if (out_off_ == out_.size()) {
      if (out_.capacity() > kKeepOutputCapacity) {
        std::string().swap(out_);
      } else {
        out_.clear();
      }
      out_off_ = 0;
      want_writable_ = false;
      // Flushed early (after a callback): the idle pass armed by write() has nothing to do.
      if (!deferred_ && !close_pending_ && idle_.get() != nullptr) uv_idle_stop(idle_.get());
    } else {
      if (out_off_ > out_.size() / 2) {
        out_.erase(0, out_off_);
        out_off_ = 0;
      }
      want_writable_ = true;
    }
    SetPollEvents(UV_READABLE | (want_writable_ ? UV_WRITABLE : 0));
  }

  // --- close and errors ----------------------------------------------------------------------

  // Reports err, then onClose. The socket is gone before JS hears of it.
  void Fail(Napi::Error err) {
    if (state_ == State::kClosed) return;
    ReleaseSocket();
    state_ = State::kClosed;
    Call(on_error_, {err.Value()});
    FinishClose();
  }

  // onClose, exactly once; afterwards nothing keeps this object alive but JS references.
  void FinishClose() {
    if (close_reported_) return;
    close_reported_ = true;
    ReleaseResources();
    Unregister();
    Call(on_close_, {});
    Unref();
  }

  void Call(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    if (data_->shutting_down) return;
    try {
      fn.MakeCallback(Value(), args, *async_);
    } catch (const Napi::Error& e) {
      // Like a throw in a socket 'data' listener: the process's uncaughtException.
      napi_fatal_exception(env_, e.Value());
    }
  }

  // --- handles -----------------------------------------------------------------------------

  void SetPollEvents(int events) {
    if (!poll_.initialised() || poll_.get() == nullptr || events == poll_events_) return;
    poll_events_ = events;
    uv_poll_start(poll_.get(), events, OnPoll);
  }

  void StartIdle() {
    if (idle_.get() != nullptr && !uv_is_active(idle_.base())) uv_idle_start(idle_.get(), OnIdle);
  }

  void ApplyRef() {
    for (uv_handle_t* h : {poll_.base(), idle_.base()}) {
      if (h == nullptr || uv_is_closing(h)) continue;
      if (refed_) {
        uv_ref(h);
      } else {
        uv_unref(h);
      }
    }
  }

  // Stops polling and closes the fd (the poll handle first: libuv must forget the fd
  // before it is closed). The idle handle survives to deliver a deferred onClose.
  void ReleaseSocket() {
    poll_.close();
    fd_.reset();
    std::string().swap(out_);
    out_off_ = 0;
  }

  void ReleaseResources() {
    ReleaseSocket();
    idle_.close();
    scanner_.reset();
    read_buf_.reset();
  }

  void Unregister() {
    if (registered_) {
      data_->live.erase(this);
      registered_ = false;
    }
  }

  // A Node-shaped system error for this connection: `path` for unix sockets, `address`
  // and `port` (and "tcp:ADDR:PORT" in the message) for TCP, as node:net reports them.
  Napi::Error StreamError(int err, const char* syscall) const {
    if (address_.empty()) return SystemError(env_, err, syscall, path_);
    const std::string host = address_.find(':') != std::string::npos ? "[" + address_ + "]" : address_;
    Napi::Error e = SystemError(env_, err, syscall, "", "", "tcp:" + host + ":" + std::to_string(port_));
    e.Value().Set("address", Napi::String::New(env_, address_));
    e.Value().Set("port", Napi::Number::New(env_, port_));
    return e;
  }

  Napi::Env env_;
  AddonData* data_;
  State state_ = State::kIdle;
  UniqueFd fd_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_idle_t> idle_;
  int poll_events_ = 0;
  bool refed_ = true;
  bool registered_ = false;
  bool deferred_ = false;
  int deferred_errno_ = 0;
  bool close_pending_ = false;
  bool close_reported_ = false;
  bool want_writable_ = false;
  std::unique_ptr<JsonScanner> scanner_;
  std::unique_ptr<char[]> read_buf_;
  std::string out_;
  size_t out_off_ = 0;
  std::string path_;     // unix socket path, for errors
  std::string address_;  // TCP peer address, for errors
  int port_ = 0;
  std::unique_ptr<Napi::AsyncContext> async_;
  Napi::FunctionReference on_connect_, on_messages_, on_error_, on_close_;
};

Stream* NewStream(Napi::Env env, Napi::Object* out) {
  *out = GetAddonData(env)->stream_ctor.New({});
  return Stream::Unwrap(*out);
}

}  // namespace

// streamConnectUnix(path, opts, callbacks)
static Napi::Value StreamConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "The \"path\" argument must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos)
    throw Napi::TypeError::New(env, "The \"path\" argument must be a non-empty path without NUL bytes");
  ScanLimits limits = LimitsArg(env, info[1]);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sun.sun_path))
    throw SystemError(env, ENAMETOOLONG, "connect", path, "",
                      "a unix socket path holds at most " + std::to_string(sizeof(sun.sun_path) - 1) + " bytes");
  memcpy(sun.sun_path, path.data(), path.size());
  Napi::Object obj;
  Stream* s = NewStream(env, &obj);
  s->Start(info[2], reinterpret_cast<const sockaddr*>(&sun), static_cast<socklen_t>(sizeof(sun)), limits, path,
           std::string(), 0);
  return obj;
}

// streamConnectTcp(ip, port, opts, callbacks): ip is numeric (the TS layer resolves names).
static Napi::Value StreamConnectTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "streamConnectTcp(ip: string, port: number, opts, callbacks)");
  std::string ip = info[0].As<Napi::String>().Utf8Value();
  double port = info[1].As<Napi::Number>().DoubleValue();
  if (!(port >= 1 && port <= 65535) || std::floor(port) != port)
    throw Napi::RangeError::New(env, "The \"port\" argument must be an integer from 1 to 65535");
  ScanLimits limits = LimitsArg(env, info[2]);
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    Napi::Error err =
        Napi::TypeError::New(env, "streamConnectTcp: \"" + ip + "\" is not a numeric IPv4 or IPv6 address");
    err.Value().Set("code", Napi::String::New(env, "ERR_INVALID_IP_ADDRESS"));
    throw err;
  }
  Napi::Object obj;
  Stream* s = NewStream(env, &obj);
  s->Start(info[3], reinterpret_cast<const sockaddr*>(&ss), len, limits, std::string(), ip, static_cast<int>(port));
  return obj;
}

static Napi::Value JsonFramerFactory(const Napi::CallbackInfo& info) {
  auto* ctor = static_cast<Napi::FunctionReference*>(info.Data());
  return ctor->New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
}

void InitStream(Napi::Env env, Napi::Object exports, AddonData* data) {
  data->stream_ctor = Napi::Persistent(Stream::Define(env));
  auto* framer_ctor = new Napi::FunctionReference(Napi::Persistent(Framer::Define(env)));
  env.AddCleanupHook([framer_ctor]() { delete framer_ctor; });
  exports.Set("jsonFramer", Napi::Function::New(env, JsonFramerFactory, "jsonFramer", framer_ctor));
  exports.Set("streamConnectUnix", Napi::Function::New(env, StreamConnectUnix, "streamConnectUnix"));
  exports.Set("streamConnectTcp", Napi::Function::New(env, StreamConnectTcp, "streamConnectTcp"));
}

}  // namespace vhostplug
