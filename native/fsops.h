// Filesystem primitives the vhost-user binding needs: an EXDEV-honest rename(2) /
// renameat2(2) and the mount identity of a path (statx STATX_MNT_ID).
// Synchronous on purpose: both are single quick syscalls on local paths.
#pragma once
#include <cstdint>

namespace vhostplug {

// renameat2 flag values as the kernel defines them (stdio.h only has them with _GNU_SOURCE).
constexpr unsigned kRenameNoReplace = 1u << 0;
constexpr unsigned kRenameExchange = 1u << 1;

// rename(2) when flags == 0, renameat2(2) otherwise. Returns 0 or an errno value.
int RenamePath(const char* src, const char* dst, unsigned flags);

struct MountIdentity {
  uint64_t dev = 0;
  // -1 when the kernel does not report STATX_MNT_ID (before Linux 5.8).
  int64_t mnt_id = -1;
  uint64_t ino = 0;
  uint32_t mode = 0;
};

// statx(AT_SYMLINK_NOFOLLOW): a final symlink is described, not followed.
// Returns 0 or an errno value.
int StatMountIdentity(const char* path, MountIdentity* out);

}  // namespace vhostplug
