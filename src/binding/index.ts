/** The binding drivers behind one contract (public surface). */
export {
  BindingError,
  DriverRegistry,
  NoDriverError,
  Rollback,
  bindingError,
  disconnectContainer,
  type BindingCheckRequest,
  type BindingDriver,
  type BindingPhase,
  type BindingRequest,
  type BindingResult,
  type DriverKind,
  type HealthReport,
  type UnbindRequest,
  type UnbindResult,
} from './driver';
export {
  VhostUserDriver,
  type VhostUserDriverOptions,
  type VhostUserAttachment,
  type ConnectRequest,
  type ConnectResult,
  type ConnectTimings,
  type DisconnectRequest,
  type DisconnectResult,
} from './vhostuser';
export { formatAppConfig, generationOf, APP_CONFIG_VERSION, type AppConfig } from './app-config';
export {
  VethDriver,
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
