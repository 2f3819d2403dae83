// Owner, mode and label of one file through one O_PATH descriptor (see ownership.h).
#include "ownership.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "unique_fd.h"

namespace vhostplug {

namespace {

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452  // Linux 6.6, the same number on every architecture
#endif

// The path through which an O_PATH fd's inode is reached by calls that take no fd.
std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// chmod of the inode behind an O_PATH fd: fchmod(2) refuses O_PATH fds (EBADF), so
// fchmodat2(fd, "", AT_EMPTY_PATH) (Linux 6.6), else chmod of /proc/self/fd/N (what glibc's
// fchmodat does), which follows the magic link to the same inode, never a path.
int ChmodFd(int fd, mode_t mode) {
  if (::syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0) return 0;
  if (errno != ENOSYS && errno != EINVAL) return errno;
  return ::chmod(ProcFdPath(fd).c_str(), mode) == 0 ? 0 : errno;
}

int TypeMismatch(ExpectType expect, mode_t mode) {
  switch (expect) {
    case ExpectType::kAny:
      return 0;
    case ExpectType::kSocket:
      return S_ISSOCK(mode) ? 0 : ENOTSOCK;
    case ExpectType::kDirectory:
      return S_ISDIR(mode) ? 0 : ENOTDIR;
    case ExpectType::kRegular:
      return S_ISREG(mode) ? 0 : S_ISDIR(mode) ? EISDIR : EINVAL;
  }
  return EINVAL;
}

void Fill(const struct stat& st, OwnershipResult* out) {
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  out->mode = st.st_mode;
  out->uid = st.st_uid;
  out->gid = st.st_gid;
}

}  // namespace

int ApplyOwnership(const char* path, const OwnershipRequest& req, OwnershipResult* out, const char** syscall) {
  *syscall = "open";
  UniqueFd fd(::open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return errno;
  struct stat st {};
  *syscall = "fstat";
  if (::fstat(fd.get(), &st) != 0) return errno;
  // O_PATH|O_NOFOLLOW opens a final symlink itself: refuse it, as open(O_NOFOLLOW) would.
  if (S_ISLNK(st.st_mode)) {
    *syscall = "open";
    return ELOOP;
  }
  if (int e = TypeMismatch(req.expect, st.st_mode)) return e;

  // The label first, then the mode, then the owner: until the owner changes, the file is
  // root's (or whoever had it), so no other user gains access half-way; the mode is
  // applied before the owner so the new owner never sees the old, wider bits.
  if (!req.xattr_name.empty()) {
    *syscall = "setxattr";
    if (::setxattr(ProcFdPath(fd.get()).c_str(), req.xattr_name.c_str(), req.xattr_value.data(), req.xattr_value.size(),
                   0) != 0)
      return errno;
  }
  if (req.mode >= 0) {
    *syscall = "fchmodat";
    if (int e = ChmodFd(fd.get(), static_cast<mode_t>(req.mode))) return e;
  }
  if (req.uid != static_cast<uid_t>(-1) || req.gid != static_cast<gid_t>(-1)) {
    *syscall = "fchownat";
    if (::fchownat(fd.get(), "", req.uid, req.gid, AT_EMPTY_PATH) != 0) return errno;
    // chown(2) clears set-user/group-ID bits of non-directories: put back what was asked.
    if (req.mode >= 0) {
      *syscall = "fstat";
      if (::fstat(fd.get(), &st) != 0) return errno;
      if ((st.st_mode & 07777) != static_cast<mode_t>(req.mode)) {
        *syscall = "fchmodat";
        if (int e = ChmodFd(fd.get(), static_cast<mode_t>(req.mode))) return e;
      }
    }
  }
  *syscall = "fstat";
  if (::fstat(fd.get(), &st) != 0) return errno;
  Fill(st, out);
  return 0;
}

namespace {

// An optional integer property in [min, max]; `dflt` when absent or undefined.
int64_t IntProp(Napi::Env env, Napi::Object o, const char* key, int64_t min, int64_t max, int64_t dflt) {
  if (!o.Has(key)) return dflt;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("The \"") + key + "\" option must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min) ||
      d > static_cast<double>(max)) {
    Napi::Error err = Napi::RangeError::New(env, std::string("The \"") + key + "\" option is out of range");
    err.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
    throw err;
  }
  return static_cast<int64_t>(d);
}

Napi::Object ResultObject(Napi::Env env, const OwnershipResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dev", Napi::Number::New(env, static_cast<double>(r.dev)));
  o.Set("ino", Napi::Number::New(env, static_cast<double>(r.ino)));
  o.Set("mode", Napi::Number::New(env, r.mode));
  o.Set("uid", Napi::Number::New(env, r.uid));
  o.Set("gid", Napi::Number::New(env, r.gid));
  return o;
}

// applyOwnership(path, { expect?: 'socket'|'directory'|'file', uid?, gid?, mode?, xattr?: [name, value] })
//   -> { dev, ino, mode, uid, gid } after the change. Throws a Node-style SystemError.
Napi::Value JsApplyOwnership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsObject())
    throw Napi::TypeError::New(env, "The \"options\" argument must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  OwnershipRequest req;
  if (o.Has("expect") && !o.Get("expect").IsUndefined()) {
    std::string e = o.Get("expect").ToString().Utf8Value();
    if (e == "socket")
      req.expect = ExpectType::kSocket;
    else if (e == "directory")
      req.expect = ExpectType::kDirectory;
    else if (e == "file")
      req.expect = ExpectType::kRegular;
    else
      throw Napi::TypeError::New(env, "The \"expect\" option must be \"socket\", \"directory\" or \"file\"");
  }
  req.uid = static_cast<uid_t>(IntProp(env, o, "uid", -1, 0xfffffffe, -1));
  req.gid = static_cast<gid_t>(IntProp(env, o, "gid", -1, 0xfffffffe, -1));
  req.mode = static_cast<int>(IntProp(env, o, "mode", -1, 07777, -1));
  if (o.Has("xattr") && !o.Get("xattr").IsUndefined()) {
    Napi::Value x = o.Get("xattr");
    if (!x.IsArray() || x.As<Napi::Array>().Length() != 2 || !x.As<Napi::Array>().Get(0u).IsString() ||
        !x.As<Napi::Array>().Get(1u).IsString())
      throw Napi::TypeError::New(env, "The \"xattr\" option must be [name, value] strings");
    req.xattr_name = x.As<Napi::Array>().Get(0u).As<Napi::String>().Utf8Value();
    req.xattr_value = x.As<Napi::Array>().Get(1u).As<Napi::String>().Utf8Value();
    if (req.xattr_name.empty() || req.xattr_name.find('\0') != std::string::npos)
      throw Napi::TypeError::New(env, "The xattr name must be a non-empty string without NUL bytes");
  }
  OwnershipResult out;
  const char* syscall = "open";
  int err = ApplyOwnership(path.c_str(), req, &out, &syscall);
  if (err != 0) throw SystemError(env, err, syscall, path);
  return ResultObject(env, out);
}

// getXattr(path, name) -> string | null (null: the attribute is not set). The final symlink
// is not followed (lgetxattr).
Napi::Value JsGetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info, 0, "path");
  std::string name = PathArg(info, 1, "name");
  char buf[4096];
  ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
  if (n < 0) {
    if (errno == ENODATA) return env.Null();
    throw SystemError(env, errno, "lgetxattr", path);
  }
  return Napi::String::New(env, buf, static_cast<size_t>(n));
}

// fsetxattr(fd, name, value): a label on a file open for writing (an atomic write's temp file).
Napi::Value JsFsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "The \"fd\" argument must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string name = PathArg(info, 1, "name");
  if (info.Length() < 3 || !info[2].IsString())
    throw Napi::TypeError::New(env, "The \"value\" argument must be a string");
  std::string value = info[2].As<Napi::String>().Utf8Value();
  if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) throw SystemError(env, errno, "fsetxattr");
  return env.Undefined();
}

}  // namespace

void InitOwnership(Napi::Env env, Napi::Object exports, AddonData*) {
  exports.Set("applyOwnership", Napi::Function::New(env, JsApplyOwnership, "applyOwnership"));
  exports.Set("getXattr", Napi::Function::New(env, JsGetXattr, "getXattr"));
  exports.Set("fsetxattr", Napi::Function::New(env, JsFsetxattr, "fsetxattr"));
}

}  // namespace vhostplug
