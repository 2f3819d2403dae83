/**
 * vhostplug: vhost-user and veth ports for Kubernetes pods on Open vSwitch with a DPDK
 * datapath. The package root is the node-agent API that docs/api.md documents, and nothing
 * more; the other entry points are `vhostplug/ovsdb` (the schema-agnostic OVSDB client),
 * `vhostplug/cni` (the CNI spec layer) and `vhostplug/kuryr` (the Kuryr drop-in). The API
 * report (api/*.api.md) shows every change to them in review.
 *
 * ```ts
 * import { Vswitch, VhostUserDriver, decodeVIF } from 'vhostplug';
 * const vswitch = await Vswitch.connect('unix:/var/run/openvswitch/db.sock');
 * const driver = new VhostUserDriver(vswitch, { mountPoint: '/var/run/vhostuser', ovsVhuPath: '/var/run/openvswitch' });
 * const att = await driver.connect({ vif: decodeVIF(primitive), containerId, ifname: 'eth0' });
 * ```
 */

// The Open_vSwitch database: port operations, typed rows, the ovs-vswitchd acknowledgement.
export {
  Vswitch,
  PortConflictError,
  type VswitchOptions,
  type WriteAckOptions,
  type AddPortResult,
  type WriteTimings,
  type OwnedPort,
} from './vswitch/vswitch';
export { DatapathMismatchError, type PortSpec, type InterfaceType } from './vswitch/ports';
export {
  VSWITCH_CACHE,
  VswitchRows,
  type OpenVSwitchRow,
  type BridgeRow,
  type PortRow,
  type InterfaceRow,
} from './vswitch/rows';
export { VswitchdAck, VswitchdError, transactAcked, type InterfaceFailure } from './vswitch/ack';
export { OWNER_KEYS, attachmentOf, ownerExternalIds, osVifExternalIds, type Attachment } from './vswitch/ownership';
export { OvsdbClient, type ClientOptions } from './ovsdb/client';

// The binding drivers, behind one contract.
export {
  BindingError,
  NoDriverError,
  DriverRegistry,
  Rollback,
  type BindingDriver,
  type BindingRequest,
  type BindingResult,
  type BindingCheckRequest,
  type BindingPreflight,
  type BindingPhase,
  type SweepOptions,
  type SweepReport,
  type UnbindRequest,
  type UnbindResult,
  type HealthReport,
  type DriverKind,
} from './binding/driver';
export {
  VhostUserDriver,
  type VhostUserDriverOptions,
  type VhostUserAttachment,
  type ConnectRequest,
  type ConnectResult,
  type ConnectTimings,
  type DisconnectRequest,
  type DisconnectResult,
  type VhostUserDriverEvents,
} from './binding/vhostuser';
export { VhostUserPortPool, PoolSet, type PortPoolOptions, type PoolStats, type PooledPort } from './binding/pool';
export {
  VethDriver,
  type VethDriverOptions,
  type VethConnectRequest,
  type VethConnectResult,
  type VethDisconnectRequest,
  type VethDisconnectResult,
  type VethCheckRequest,
  type VethHealthReport,
  type VethAttachment,
  type VethTimings,
  type VethStep,
  type VethPlan,
} from './binding/veth';
export {
  ipConfigFromIpam,
  ipConfigFromVif,
  type IpConfig,
  type IpRoute,
  type IpamResultLike,
} from './binding/ipconfig';
export { formatAppConfig, APP_CONFIG_VERSION, type AppConfig } from './binding/app-config';
export type { HybridNames } from './binding/hybrid';

// The pod's side: per-pod directories, ownership, interfaces.json, the vhost-user limit (docs/pod-side.md, docs/capacity.md).
export {
  podAccessFromSecurityContext,
  podDirOf,
  type PodAccess,
  type PodSecurityContext,
  type SocketLayout,
} from './binding/pod-dir';
export {
  parsePodIndex,
  formatPodIndex,
  buildPodIndex,
  findInterface,
  flatPodIndexFile,
  PodIndexError,
  POD_INDEX_FILE,
  POD_INDEX_VERSION,
  type PodIndex,
  type PodIndexEntry,
} from './binding/pod-index';
export {
  vhostUserLimit,
  countVhostUserPorts,
  PortBudget,
  VhostUserLimitError,
  DEFAULT_VHOSTUSER_LIMIT,
  type VhostUserLimit,
  type VhostUserPortCount,
  type PortReservation,
} from './binding/capacity';
export {
  NodeCapacityAdvertiser,
  kubeNodeStatusClient,
  capacityPatch,
  VHOSTUSER_RESOURCE,
  type NodeStatusClient,
  type NodeCapacityOptions,
  type NodeCapacityStatus,
} from './agent/node-capacity';

// The os-vif VIF model, its codec and the names derived from a port id.
export type {
  VIF,
  VIFKind,
  VIFVHostUser,
  VIFOpenVSwitch,
  VIFBridge,
  VIFPortProfileOpenVSwitch,
  VIFCommon,
  DatapathOffloadRepresentor,
  Network,
  Subnet,
  FixedIP,
  Route,
  PodVIF,
  VHostUserVifOptions,
} from './vif/model';
export { makeVHostUserVif } from './vif/model';
export {
  decodeVIF,
  parseVIF,
  encodeVIF,
  decodeKuryrPortVifs,
  encodeKuryrPortVifs,
  VIFFormatError,
  type OvoPrimitive,
  type VIFFormatErrorCode,
} from './vif/ovo';
export {
  neutronPortToVIF,
  NeutronTranslationError,
  type NeutronPort,
  type NeutronVifDetails,
  type SubnetMapping,
  type TranslationConfig,
  type NeutronTranslationErrorCode,
} from './vif/neutron';
export { vhostUserPortName, vethHostName, vhostUserSocketPath, vhostUserConfigFileName } from './vif/names';

// A node agent from kuryr.conf.
export { openRuntime, type Runtime, type RuntimeOptions } from './agent/runtime';
export {
  loadConfig,
  parseConfig,
  defaultConfig,
  ConfigError,
  type VhostplugConfig,
  type LoadedConfig,
  type ConfigWarning,
} from './agent/config';

// Errors, validation, logging.
export {
  VhostplugError,
  SystemError,
  systemError,
  errorCode,
  hasCode,
  UsageError,
  type SystemErrorFields,
} from './core/errors';
export {
  ValidationError,
  validateContainerId,
  validateIfName,
  validateVifName,
  validateMac,
  validateMode,
  validateAbsolutePath,
  validateUnixSocketPath,
  validatePodUid,
  validatePodNamespace,
  validatePodName,
  validateOwner,
  validateSocketMode,
  validateSeLabel,
  type FileOwner,
  type ValidationRule,
  type VHostUserMode,
} from './core/validate';
export { jsonLogger, silentLogger, type Logger, type LogLevel } from './core/log';

// Filesystem primitives of the vhost-user binding.
export { moveSocket, CrossDeviceError, NotASocketError, type MoveSocketOptions, type MovedSocket } from './os/rename';
export {
  DirWatcher,
  waitForEntry,
  isSocket,
  EntryTimeoutError,
  WatchedDirGoneError,
  type DirEvent,
  type DirEventType,
  type DirWatcherOptions,
  type WaitForEntryOptions,
} from './os/inotify';
export { writeFileAtomic, unlinkIfExists, UnsafeTargetError, type AtomicWriteOptions } from './os/atomic-file';
export { checkSameMount, type PathMount, type SameMountCheck, type MountInfoEntry } from './os/mounts';
export { selinuxEnabled, SocketSwappedError, type FileOwnership } from './os/ownership';
