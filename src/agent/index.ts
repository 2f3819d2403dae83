/** The node agent's shared parts: kuryr.conf, the runtime wiring, locks, metrics and health. */
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
export { KeyedMutex, SharedExclusiveGate, Semaphore, attachmentKey } from './locks';
