/**
 * vhostplug: vhost-user and veth ports for Kubernetes pods on Open vSwitch with a DPDK
 * datapath. The package root re-exports the public API of each layer on purpose; each
 * layer's index decides what is public (see docs/api.md).
 *
 * ```ts
 * import { openRuntime, parseConfig, decodeVIF } from 'vhostplug';
 * const rt = await openRuntime(parseConfig(kuryrConfText).config);
 * const att = await rt.vhostuser.connect({ vif: decodeVIF(primitive), containerId, ifname: 'eth0' });
 * ```
 */
export * from './ovsdb';
export * from './vswitch';
export * from './vif';
export * from './core';
export * from './binding';
export * from './agent';
export * from './cni';
export { moveSocket, renameNoReplace, sameMount, CrossDeviceError, NotASocketError, VHOSTUSER_SAME_MOUNT_HINT } from './os/rename';
export { DirWatcher, waitForEntry, isSocket, EntryTimeoutError, WatchedDirGoneError, type DirEvent, type DirEventType } from './os/inotify';
export { writeFileAtomic, unlinkIfExists, UnsafeTargetError } from './os/atomic-file';
export { checkSameMount, mountOf } from './os/mounts';
export { native, type SystemError } from './native';
/** rtnetlink (veth pairs born in a netns, addresses, routes, bridges) with per-netns sockets. */
export * as netlink from './os/netlink';
/** The Kuryr drop-in (kuryr-daemon API, KuryrPort watch); @kubernetes/client-node loads on first use. */
export * as kuryr from './kuryr';
