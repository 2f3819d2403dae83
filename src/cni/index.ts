/**
 * The CNI front end: spec layer (versions, environment, config, results, errors), IPAM
 * delegation, device-info, the shim wire protocol and the skel-style dispatcher.
 * See docs/cni.md.
 */
export { CniError, CniErrorCode, isCniError, toCniError, type CniErrorJson } from './errors';
export {
  SUPPORTED_CNI_VERSIONS,
  CURRENT_CNI_VERSION,
  CNI_COMMANDS,
  MIN_VERSION_FOR_COMMAND,
  assertCommandAllowed,
  compareCniVersions,
  isSupportedCniVersion,
  negotiateCniVersion,
  versionReply,
  type CniCommand,
  type CniVersion,
  type VersionReply,
} from './spec';
export {
  parseCniEnv,
  parseCniArgs,
  pickCniVariables,
  containerIdProblem,
  ifnameProblem,
  normalizeMac,
  REQUIRED_ENV,
  MAX_CONTAINER_ID_LENGTH,
  type CniEnv,
  type CniArgs,
  type CniEnvMap,
} from './env';
export {
  parseNetConf,
  decodeJsonConfig,
  delegateConfig,
  peekCniVersion,
  MAX_NETCONF_BYTES,
  NETCONF_MODES,
  DEFAULT_MODE,
  DEFAULT_BRIDGE,
  type NetConf,
  type NetconfMode,
  type NetconfSocketLayout,
  type RuntimeConfig,
  type ValidAttachment,
  type ParseNetConfOptions,
} from './netconf';
export {
  emptyResult,
  parseResult,
  encodeResult,
  formatResult,
  convertResult,
  vhostUserResult,
  vethResult,
  attachmentResult,
  type AttachmentResultInput,
  type CniResult,
  type CniInterface,
  type CniIpConfig,
  type CniRoute,
  type CniDns,
  type VhostUserResultInput,
  type VethResultInput,
} from './result';
export {
  findPlugin,
  execPlugin,
  pluginVersions,
  commonVersion,
  ipamAdd,
  ipamDel,
  ipamCheck,
  ipamGc,
  ipamStatus,
  type DelegateOutcome,
  type IpamCallOptions,
} from './ipam';
export {
  vhostUserDeviceInfo,
  writeDeviceInfo,
  readDeviceInfo,
  removeDeviceInfo,
  checkDeviceInfoPath,
  DEFAULT_DEVICE_INFO_DIRS,
  DEVICE_INFO_VERSION,
  type VhostUserDeviceInfo,
  type DeviceInfoOptions,
} from './device-info';
export { UnixListener, type UnixListenerOptions, type UnixListenerEvents } from '../os/unix-listener';
export type { SystemErrorFields } from '../core/errors';
export {
  listenShimSocket,
  serveShimConnections,
  callShimDaemon,
  encodeShimRequest,
  encodeShimResponse,
  decodeShimRequest,
  decodeShimResponse,
  errorResponse,
  FrameReader,
  ShimProtocolError,
  DEFAULT_DAEMON_SOCKET,
  SHIM_PROTOCOL_VERSION,
  type ShimRequest,
  type ShimResponse,
  type ShimHandler,
  type ShimContext,
  type ShimServer,
  type ShimConnections,
  type ConnectionSource,
  type ServeOptions,
  type ListenOptions,
} from './shim-protocol';
export { dispatchCni, type CniCall, type CniPlugin, type DispatchOptions, type UndecodableDel } from './skel';
