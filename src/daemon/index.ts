/**
 * The node daemon behind the `vhostplug-cni` shim: CNI plugin, durable state, locks and
 * the reconciler. See docs/daemon.md and docs/cni-daemon.md.
 */
export { Daemon, type DaemonOptions, type RequestOutcome } from './daemon';
export {
  VhostplugCniPlugin,
  DaemonErrorCode,
  stablePortId,
  stablePortName,
  stableMac,
  isDerivedPort,
  cniErrorOf,
  type PluginOptions,
  type PhaseEvent,
  type VethDriverLike,
} from './cni-plugin';
export { StateStore, stateFileName, recordProblem, STATE_VERSION, type AttachmentRecord, type AttachmentKind, type BadStateFile } from './state';
export { Reconciler, isLive, type ReconcileReport, type ReconcilerOptions } from './reconciler';
