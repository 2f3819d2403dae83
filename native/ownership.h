// Ownership, permission bits and extended attributes (SELinux labels) of the files a pod
// is handed: its directory, a client-mode socket, its config files.
//
// Everything acts on ONE O_PATH|O_NOFOLLOW descriptor opened once, never on the path
// again: a symlink is refused (ELOOP) instead of followed, and the file whose type was
// checked is the file whose owner, mode and label change. Policy (which uid, which mode,
// whether SELinux is on) lives in src/os/ownership.ts.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace vhostplug {

// File type the caller expects (checked with fstat before anything changes); kAny skips the check.
enum class ExpectType { kAny, kSocket, kDirectory, kRegular };

struct OwnershipRequest {
  ExpectType expect = ExpectType::kAny;
  uid_t uid = static_cast<uid_t>(-1);  // -1: unchanged
  gid_t gid = static_cast<gid_t>(-1);  // -1: unchanged
  int mode = -1;                       // -1: unchanged; else permission bits (07777)
  std::string xattr_name;              // empty: no xattr
  std::string xattr_value;
};

struct OwnershipResult {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Applies `req` to `path` through one O_PATH fd. Returns 0 or an errno value; *syscall
// names the call that failed. ELOOP for a symlink, ENOTSOCK/ENOTDIR/EISDIR (or EINVAL for
// other types) when the file is not of the expected type; nothing is changed then.
int ApplyOwnership(const char* path, const OwnershipRequest& req, OwnershipResult* out, const char** syscall);

}  // namespace vhostplug
