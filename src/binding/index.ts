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
