// EXDEV-checked rename and mount identity. Policy (is it a socket, what to tell the
// operator on EXDEV) lives in src/os/rename.ts; this file only does the syscalls and
// turns errno into Node-shaped errors.
#include "fsops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "addon.h"
#include "args.h"
#include "errors.h"

namespace vhostplug {

int RenamePath(const char* src, const char* dst, unsigned flags) {
  // Plain rename(2) when no flag is asked for: works on every kernel and filesystem.
  int rc = flags == 0 ? ::rename(src, dst) : ::renameat2(AT_FDCWD, src, AT_FDCWD, dst, flags);
  return rc == 0 ? 0 : errno;
}

int StatMountIdentity(const char* path, MountIdentity* out) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS | STATX_MNT_ID, &stx) != 0)
    return errno;
  out->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  out->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? static_cast<int64_t>(stx.stx_mnt_id) : -1;
  out->ino = stx.stx_ino;
  out->mode = stx.stx_mode;
  return 0;
}

// rename(src, dst, flags): flags 0 = rename(2), 1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE.
static Napi::Value Rename(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src = PathArg(info, 0, "src");
  std::string dst = PathArg(info, 1, "dst");
  uint32_t flags = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "The \"flags\" argument must be a number");
    flags = info[2].As<Napi::Number>().Uint32Value();
  }
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 || flags == (kRenameNoReplace | kRenameExchange)) {
    throw SystemError(env, EINVAL, "rename", src, dst, "unsupported flags " + std::to_string(flags));
  }
  int err = RenamePath(src.c_str(), dst.c_str(), flags);
  if (err != 0) throw SystemError(env, err, "rename", src, dst);
  return env.Undefined();
}

// mountInfo(path) -> { dev, mntId, ino, mode }
static Napi::Value MountInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info, 0, "path");
  MountIdentity id;
  int err = StatMountIdentity(path.c_str(), &id);
  if (err != 0) throw SystemError(env, err, "statx", path);
  Napi::Object o = Napi::Object::New(env);
  // Doubles hold device numbers, mount ids and inode numbers exactly up to 2^53,
  // far beyond what Linux hands out for them in practice.
  o.Set("dev", Napi::Number::New(env, static_cast<double>(id.dev)));
  o.Set("mntId", Napi::Number::New(env, static_cast<double>(id.mnt_id)));
  o.Set("ino", Napi::Number::New(env, static_cast<double>(id.ino)));
  o.Set("mode", Napi::Number::New(env, id.mode));
  return o;
}

void InitFsOps(Napi::Env env, Napi::Object exports, AddonData*) {
  exports.Set("rename", Napi::Function::New(env, Rename, "rename"));
  exports.Set("mountInfo", Napi::Function::New(env, MountInfo, "mountInfo"));
}

}  // namespace vhostplug
