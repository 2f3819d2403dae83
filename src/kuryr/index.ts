/**
 * The Kuryr drop-in (`vhostplug/kuryr`): the kuryr-daemon HTTP API served from KuryrPort
 * watches, with health and metrics; @kubernetes/client-node loads on first use. An existing
 * Kuryr deployment keeps kuryr-controller and kuryr-cni and replaces kuryr-daemon with this
 * (docs/kuryr.md). `startKuryrDaemon` wires everything; the pieces are exported for a node
 * agent that wires them itself.
 */
export { startKuryrDaemon, type KuryrDaemon, type KuryrDaemonOptions } from './daemon';
export {
  KuryrFlows,
  KuryrCniError,
  parseCniRequest,
  toKuryrError,
  rewriteNetns,
  EVENT_REASONS,
  type CniParams,
  type KuryrFlowsOptions,
  type KuryrErrorKind,
} from './flows';
export { startKuryrApi, RemoteBindError, type KuryrApi, type KuryrApiOptions } from './http-api';
export {
  KuryrRegistry,
  RegistryWaitAborted,
  RegistryWaitTimeout,
  podKey,
  type RegistryEntry,
  type RegistryValue,
  type KuryrPortObject,
  type PodGone,
  type UpsertResult,
} from './registry';
export { KuryrK8sSource, loadKubeConfig, nodeName, type KuryrKube, type PodInfo, type PodEvent } from './k8s-source';
export type { PodSecurityContext } from '../binding/pod-dir';
export type {
  NodeCapacityAdvertiser,
  NodeCapacityOptions,
  NodeCapacityStatus,
  NodeStatusClient,
} from '../agent/node-capacity';
