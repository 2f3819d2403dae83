/** The binding drivers and their configuration (public surface). */
export {
  VhostUserDriver,
  VhostUserError,
  type VhostUserDriverOptions,
  type VhostUserAttachment,
  type ConnectRequest,
  type ConnectResult,
  type ConnectTimings,
  type DisconnectRequest,
  type DisconnectResult,
  type HealthReport,
} from './vhostuser';
export { formatAppConfig, generationOf, APP_CONFIG_VERSION, type AppConfig } from './app-config';
export { openRuntime, vhostUserOptions, vethOptions, resolveUid, resolveGid, type Runtime, type RuntimeOptions } from './runtime';
export {
  loadConfig,
  parseConfig,
  defaultConfig,
  formatConfigWarning,
  ConfigError,
  DEFAULT_MOUNT_POINT,
  DEFAULT_OVS_VHU_PATH,
  DEFAULT_OVSDB_CONNECTION,
  type VhostplugConfig,
  type LoadedConfig,
  type ConfigWarning,
} from './config';
export {
  ValidationError,
  isValidationError,
  validateContainerId,
  validateIfName,
  validateVifName,
  validateMac,
  validateMode,
  validatePodUid,
  validateAbsolutePath,
  validateUnixSocketPath,
  canonicalMac,
  type VHostUserMode,
} from './validate';
export {
  VethDriver,
  VethError,
  VETH_KEYS,
  vethMtu,
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
} from './veth';
export { hybridNames, hybridNamesFromPort, hybridQvbName, hybridQvoName, HYBRID_QVB_PREFIX, HYBRID_QVO_PREFIX, type HybridNames } from './hybrid';
export { ipConfigFromVif, ipConfigFromIpam, normalizeIpConfig, type IpConfig, type IpRoute, type NormalizedIpConfig, type IpamResultLike } from './ipconfig';
