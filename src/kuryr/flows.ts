/**
 * The CNI ADD and DEL flows of a Kuryr node (kuryr-kubernetes `K8sCNIRegistryPlugin`),
 * over the watch-fed {@link KuryrRegistry} and vhostplug's binding drivers.
 *
 * ADD (reference: ../shared/reference/kuryr-behaviour.md 4.6):
 * 1. key `<K8S_POD_NAMESPACE>/<K8S_POD_NAME>`; the pod UID from `K8S_POD_UID`, else from the
 *    pod (404 -> 410 "pod gone");
 * 2. wait, woken by watch events, up to `vif_annotation_timeout` for the pod's VIFs. The
 *    deleted-pod sentinel -> 410. An entry of another pod UID keeps the wait going (a new
 *    KuryrPort may replace it) unless the pod is static; at the deadline a mismatch -> 410,
 *    no entry -> Event `CNITimeoutKuryrPortRegistry` and 504;
 * 3. connect EVERY VIF (in parallel; `eth0` becomes CNI_IFNAME and the default gateway);
 *    a failure disconnects the ones this ADD connected (Kuryr leaves them);
 * 4. record CNI_CONTAINERID in the entry;
 * 5. Event `CNIWaitingForActiveVIFs`, wait up to `vif_annotation_timeout` for all VIFs
 *    active; timeout -> Event `CNITimedOutWaitingForActiveVIFs` and 504, VIFs stay plugged
 *    (as Kuryr: the runtime's DEL removes them);
 * 6. return the default VIF (the API answers 202 with its o.vo primitive).
 * The KuryrPort deleted mid-ADD (after the VIFs were found) -> 410 at once instead of
 * Kuryr's 60 s wait for an activation that cannot come; the recorded container id lets
 * the runtime's DEL clean up.
 *
 * DEL (4.7): the sentinel -> removed, 204; an entry recorded for ANOTHER container id ->
 * ignored, 204 ("DEL for unknown ADD"); else wait 5 s for the entry: timeout, pod gone or a
 * UID mismatch -> best-effort cleanup of what this container id owns, 204; else disconnect
 * every VIF, then remove the entry if the KuryrPort is gone or mark it unplugged.
 */
import { CniError, CniErrorCode, isCniError } from '../cni/errors';
import {
  isValidationError,
  validateContainerId,
  validateIfName,
  validatePodName,
  validatePodNamespace,
  validatePodUid,
} from '../core/validate';
import { disconnectContainer, Rollback, type BindingRequest, type DriverRegistry } from '../binding/driver';
import { silentLogger, type Logger } from '../core/log';
import { DEFAULT_IFNAME, type PodVIF, type VIF } from '../vif/model';
import type { CniMetrics } from '../agent/metrics';
import type { KuryrKube } from './k8s-source';
import { podAccessFromSecurityContext, type PodSecurityContext } from '../binding/pod-dir';
import {
  allActive,
  KuryrRegistry,
  podKey,
  RegistryWaitAborted,
  RegistryWaitTimeout,
  type RegistryEntry,
  type RegistryValue,
} from './registry';

// ---------------------------------------------------------------------------------------
// Errors: a CNI error plus the HTTP status the kuryr-daemon API answers with.

/** Kuryr's catch-all code (500). */
export const KURYR_INTERNAL_CODE = 999;

export type KuryrErrorKind = 'bad_request' | 'pod_gone' | 'timeout' | 'error';

/** A CNI error as the kuryr-daemon API reports it: `status` + `{code, msg, details}`. */
export class KuryrCniError extends CniError {
  constructor(
    readonly status: 400 | 410 | 500 | 504,
    readonly kind: KuryrErrorKind,
    code: number,
    msg: string,
    details?: string,
    options?: { cause?: unknown },
  ) {
    super(code, msg, details, options);
    this.name = 'KuryrCniError';
  }
}

/** 400, code 4: Kuryr's answer to a malformed request. */
export const badParams = (details: string): KuryrCniError =>
  new KuryrCniError(400, 'bad_request', CniErrorCode.InvalidEnvironment, 'Required CNI params missing.', details);
/** 410, code 3: the pod is gone, or the VIFs belong to another pod with that name. */
export const podGone = (details: string): KuryrCniError =>
  new KuryrCniError(
    410,
    'pod_gone',
    CniErrorCode.UnknownContainer,
    'Pod was deleted while processing request',
    details,
  );
export const uidMismatch = (details: string): KuryrCniError =>
  new KuryrCniError(410, 'pod_gone', CniErrorCode.UnknownContainer, 'Pod UID mismatch', details);
/** 504, code 11: try again later. */
export const timedOut = (msg: string, details: string): KuryrCniError =>
  new KuryrCniError(504, 'timeout', CniErrorCode.TryAgainLater, `${msg} Try Again Later.`, details);

/** Any error as the API reports it: KuryrCniErrors pass, everything else is 500 / 999. */
export function toKuryrError(err: unknown): KuryrCniError {
  if (err instanceof KuryrCniError) return err;
  // The client went away (kubelet gave up) or the daemon stops: retryable, not a failure of ours.
  if (err instanceof RegistryWaitAborted) return timedOut('The request was cancelled.', err.message);
  const details = isCniError(err)
    ? `${err.msg}${err.details ? `: ${err.details}` : ''}`
    : err instanceof Error
      ? err.message
      : String(err);
  return new KuryrCniError(500, 'error', KURYR_INTERNAL_CODE, 'Error processing request', details, { cause: err });
}

// ---------------------------------------------------------------------------------------
// Request parameters (kuryr `CNIParameters`).

/** One CNI request as kuryr-cni posts it. */
export interface CniParams {
  command: string;
  containerId: string;
  ifname: string;
  netns: string;
  path: string;
  /** CNI_ARGS parsed. */
  args: Record<string, string>;
  /** `config_kuryr`: the network config from the CNI stdin. */
  config: Record<string, unknown>;
  /** Every `CNI_*` field as sent. */
  env: Record<string, string>;
}

/**
 * CNI_ARGS as Kuryr parses it: split on `;`, each item on its FIRST `=`; keys starting
 * with `_` are dropped. Empty items are skipped; an item without `=` is malformed.
 */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const item of text.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq < 0) throw badParams(`CNI_ARGS item ${JSON.stringify(item)} has no "="`);
    const k = item.slice(0, eq);
    if (k.startsWith('_')) continue;
    out[k] = item.slice(eq + 1);
  }
  return out;
}

/**
 * The body of `POST /addNetwork` or `/delNetwork`: a JSON object with the `CNI_*` fields
 * (strings) and `config_kuryr`. Throws a 400 {@link KuryrCniError} naming what is wrong.
 */
export function parseCniRequest(body: unknown, command: 'ADD' | 'DEL'): CniParams {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badParams('the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(b)) {
    if (!k.startsWith('CNI_')) continue;
    if (typeof v !== 'string') throw badParams(`${k} must be a string`);
    env[k] = v;
  }
  const need =
    command === 'ADD'
      ? ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_ARGS']
      : ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_ARGS'];
  const missing = need.filter((k) => !env[k]);
  if (missing.length) throw badParams(`missing ${missing.join(', ')}`);
  if (env.CNI_COMMAND !== undefined && env.CNI_COMMAND !== command)
    throw badParams(`CNI_COMMAND is ${JSON.stringify(env.CNI_COMMAND)} on the ${command} endpoint`);
  const cfg = b.config_kuryr ?? {};
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw badParams('config_kuryr must be a JSON object');
  const args = parseCniArgs(env.CNI_ARGS!);
  for (const k of ['K8S_POD_NAMESPACE', 'K8S_POD_NAME']) if (!args[k]) throw badParams(`CNI_ARGS has no ${k}`);
  let containerId: string;
  let ifname: string;
  try {
    containerId = validateContainerId(env.CNI_CONTAINERID, 'CNI_CONTAINERID');
    ifname = validateIfName(env.CNI_IFNAME, 'CNI_IFNAME');
    // They name registry keys, Events, OVSDB external_ids and (the UID) the pod's directory.
    validatePodNamespace(args.K8S_POD_NAMESPACE, 'K8S_POD_NAMESPACE');
    validatePodName(args.K8S_POD_NAME, 'K8S_POD_NAME');
    if (args.K8S_POD_UID) validatePodUid(args.K8S_POD_UID, 'K8S_POD_UID');
  } catch (err) {
    if (isValidationError(err)) throw badParams(err.message);
    throw err;
  }
  return {
    command,
    containerId,
    ifname,
    netns: env.CNI_NETNS ?? '',
    path: env.CNI_PATH ?? '',
    args,
    config: cfg as Record<string, unknown>,
    env,
  };
}

// ---------------------------------------------------------------------------------------
// The flows.

export interface KuryrFlowsOptions {
  registry: KuryrRegistry;
  kube: KuryrKube;
  /** The binding drivers, looked up by each VIF's class. */
  drivers: DriverRegistry;
  /** `[cni_daemon] vif_annotation_timeout` in ms (default 60000): each of ADD's two waits. */
  vifTimeoutMs?: number;
  /** DEL's wait for the entry (Kuryr: 5000 ms). */
  delTimeoutMs?: number;
  metrics?: CniMetrics;
  log?: Logger;
  /** Why a pod's VIFs could not be read (a malformed KuryrPort), for a timed-out ADD's message. */
  vifProblem?: (key: string) => string | undefined;
  /** `[cni_daemon] docker_mode` + `netns_proc_dir`: the host /proc as this (containerised) daemon sees it. */
  netnsProcDir?: string | null;
}

/** Kuryr's docker_mode: a `/proc/...` netns path seen through the daemon container's mount of the host /proc. */
export function rewriteNetns(netns: string, procDir: string | null | undefined): string {
  if (!procDir || !netns.startsWith('/proc/')) return netns;
  return procDir.replace(/\/+$/, '') + netns.slice('/proc'.length);
}

/** Kuryr's Event reasons. */
export const EVENT_REASONS = {
  registryTimeout: 'CNITimeoutKuryrPortRegistry',
  waitingActive: 'CNIWaitingForActiveVIFs',
  activeTimeout: 'CNITimedOutWaitingForActiveVIFs',
} as const;

/** ifname in the pod for a registry VIF: eth0 is renamed to CNI_IFNAME. */
export function podIfname(pv: PodVIF, cniIfname: string): string {
  return pv.ifname === DEFAULT_IFNAME ? cniIfname : pv.ifname;
}

/** The VIF the 202 body carries: `eth0`, else the one marked default, else the first. */
export function defaultVif(vifs: readonly PodVIF[]): VIF {
  const pv = vifs.find((p) => p.ifname === DEFAULT_IFNAME) ?? vifs.find((p) => p.default) ?? vifs[0];
  if (!pv) throw new Error('the pod has no VIFs');
  return pv.vif;
}

export class KuryrFlows {
  private readonly log: Logger;
  private readonly vifTimeoutMs: number;
  private readonly delTimeoutMs: number;

  constructor(private readonly opts: KuryrFlowsOptions) {
    this.log = opts.log ?? silentLogger;
    this.vifTimeoutMs = opts.vifTimeoutMs ?? 60_000;
    this.delTimeoutMs = opts.delTimeoutMs ?? 5_000;
  }

  private get registry(): KuryrRegistry {
    return this.opts.registry;
  }

  private request(
    p: CniParams,
    pv: PodVIF,
    podUid: string | undefined,
    securityContext?: PodSecurityContext,
  ): BindingRequest {
    // The Pod's runAsUser/runAsGroup/fsGroup own its vhost-user files, over the node's
    // [vhostuser] owner (the driver keeps its socket_mode and se_label).
    const access = securityContext ? podAccessFromSecurityContext(securityContext) : undefined;
    return {
      ...(access && (access.uid !== undefined || access.gid !== undefined) ? { access } : {}),
      vif: pv.vif,
      containerId: p.containerId,
      ifname: podIfname(pv, p.ifname),
      netns: rewriteNetns(p.netns, this.opts.netnsProcDir),
      podUid,
      podNamespace: p.args.K8S_POD_NAMESPACE!,
      podName: p.args.K8S_POD_NAME!,
      isDefaultGateway: pv.ifname === DEFAULT_IFNAME,
    };
  }

  private event(
    p: CniParams,
    podUid: string | undefined,
    reason: string,
    message: string,
    type: 'Normal' | 'Warning',
  ): void {
    this.opts.metrics?.events.inc({ reason });
    this.opts.kube.emitEvent({
      namespace: p.args.K8S_POD_NAMESPACE!,
      podName: p.args.K8S_POD_NAME!,
      podUid,
      reason,
      message,
      type,
    });
  }

  /** CNI ADD. Resolves with the default VIF (for the 202 body). */
  async add(p: CniParams, signal?: AbortSignal): Promise<VIF> {
    const ns = p.args.K8S_POD_NAMESPACE!;
    const name = p.args.K8S_POD_NAME!;
    const key = podKey(ns, name);
    let podUid = p.args.K8S_POD_UID || undefined;
    let podStatic: boolean | undefined;
    let securityContext: PodSecurityContext | undefined;
    if (!podUid) {
      const pod = await this.opts.kube.getPod(ns, name);
      if (!pod) throw podGone(`pod ${key} does not exist`);
      podUid = pod.uid;
      podStatic = pod.static;
      securityContext = pod.securityContext;
    } else {
      // The owner of the pod's vhost-user files comes from its securityContext: the watch
      // cache has it; an API outage must not fail the ADD (the node's defaults apply).
      try {
        const pod = await this.opts.kube.getPod(ns, name);
        if (pod && pod.uid === podUid) securityContext = pod.securityContext;
      } catch (err) {
        this.log.warn('kuryr: cannot read the pod for its securityContext; the node defaults own its files', {
          pod: key,
          error: err,
        });
      }
    }

    // 1. The VIFs.
    const t0 = performance.now();
    const entry = await this.waitForEntry(p, key, podUid, podStatic, signal);
    this.opts.metrics?.waits.observe({ stage: 'kuryrport' }, (performance.now() - t0) / 1000);

    // 2. Connect them all, then record the container.
    await this.registry.withLock(key, async () => {
      const cur = this.registry.get(key);
      const e = cur?.kind === 'entry' && cur.objectUid === entry.objectUid ? cur : entry;
      await this.connectAll(p, e, podUid, securityContext);
      this.registry.recordContainer(key, p.containerId);
    });

    // 3. Wait for every VIF to be active.
    const objectUid = entry.objectUid;
    const gone = (v: RegistryValue | undefined): RegistryEntry => {
      if (v?.kind !== 'entry' || v.objectUid !== objectUid || v.delReceived) {
        throw podGone(
          `the KuryrPort ${key} was deleted while the ADD waited for its VIFs to become active; the VIFs stay plugged until DEL`,
        );
      }
      // A DEL (kubelet gave up on this ADD) already removed the VIFs: never answer 202 for them.
      if (v.vifUnplugged || v.containerId !== p.containerId)
        throw podGone(`a DEL of ${key} removed the VIFs while the ADD waited for them to become active`);
      return v;
    };
    const now = gone(this.registry.get(key));
    let final = now;
    if (!allActive(now.vifs)) {
      this.event(
        p,
        podUid,
        EVENT_REASONS.waitingActive,
        'Waiting for Neutron ports of the pod to become ACTIVE after binding.',
        'Normal',
      );
      const t1 = performance.now();
      try {
        final = await this.registry.waitFor(
          key,
          (v) => (allActive(gone(v).vifs) ? gone(v) : undefined),
          this.vifTimeoutMs,
          signal,
        );
      } catch (err) {
        if (!(err instanceof RegistryWaitTimeout)) throw err;
        const inactive = gone(this.registry.get(key))
          .vifs.filter((v) => v.vif.active !== true)
          .map((v) => v.ifname);
        this.event(
          p,
          podUid,
          EVENT_REASONS.activeTimeout,
          `Timed out waiting for Neutron ports of the pod to become ACTIVE after binding (${inactive.join(', ')}).`,
          'Warning',
        );
        throw timedOut(
          'Timed out waiting for Neutron ports to become ACTIVE.',
          `VIFs ${inactive.join(', ')} of ${key} not active within ${this.vifTimeoutMs} ms; they stay plugged`,
        );
      } finally {
        this.opts.metrics?.waits.observe({ stage: 'active' }, (performance.now() - t1) / 1000);
      }
    }
    return defaultVif(final.vifs);
  }

  /** ADD's wait for the pod's entry (event-driven), with Kuryr's UID and static-pod rules. */
  private async waitForEntry(
    p: CniParams,
    key: string,
    podUid: string,
    podStatic: boolean | undefined,
    signal?: AbortSignal,
  ): Promise<RegistryEntry> {
    const deadline = performance.now() + this.vifTimeoutMs;
    const rejected = new Set<string>(); // entries of another pod UID, checked not static
    let mismatch: string | undefined;
    for (;;) {
      const remaining = Math.max(0, Math.round(deadline - performance.now()));
      let e: RegistryEntry;
      try {
        e = await this.registry.waitFor(
          key,
          (v) => {
            if (v?.kind === 'gone') {
              if (v.podUid === undefined || v.podUid === podUid) throw podGone(`pod ${key} was deleted`);
              return undefined; // a predecessor's sentinel: wait for ours
            }
            if (v?.kind !== 'entry' || v.vifs.length === 0 || rejected.has(v.objectUid)) return undefined;
            if (v.podUid !== undefined && v.podUid !== podUid && (v.podStatic === false || podStatic === false)) {
              mismatch = `the VIFs of ${key} belong to pod UID ${v.podUid}, not ${podUid}`;
              return undefined;
            }
            return v;
          },
          remaining,
          signal,
        );
      } catch (err) {
        if (!(err instanceof RegistryWaitTimeout)) throw err;
        if (mismatch) throw uidMismatch(mismatch);
        const problem = this.opts.vifProblem?.(key);
        this.event(
          p,
          podUid,
          EVENT_REASONS.registryTimeout,
          `Timed out waiting for the KuryrPort of the pod (${Math.round(this.vifTimeoutMs / 1000)} s); check kuryr-controller.`,
          'Warning',
        );
        throw timedOut(
          'Timed out waiting for the pod VIFs (KuryrPort).',
          `no VIFs for ${key} within ${this.vifTimeoutMs} ms${problem ? `; the KuryrPort is unreadable: ${problem}` : ''}`,
        );
      }
      if (e.podUid === undefined || e.podUid === podUid || e.podStatic === true) return e;
      // podStatic unknown: Kuryr asks the pod (a static pod's mirror has another UID).
      const pod = await this.opts.kube.getPod(p.args.K8S_POD_NAMESPACE!, p.args.K8S_POD_NAME!);
      if (pod?.static) return e;
      if (pod) podStatic = false;
      rejected.add(e.objectUid);
      mismatch = `the VIFs of ${key} belong to pod UID ${e.podUid}, not ${podUid}`;
    }
  }

  /** Connects every VIF in parallel; on a failure, disconnects the ones that succeeded. */
  private async connectAll(
    p: CniParams,
    e: RegistryEntry,
    podUid: string | undefined,
    securityContext?: PodSecurityContext,
  ): Promise<void> {
    const reqs = e.vifs.map((pv) => ({
      pv,
      req: this.request(p, pv, podUid, securityContext),
      driver: this.opts.drivers.forVif(pv.vif.kind),
    }));
    const results = await Promise.allSettled(
      reqs.map(async ({ req, driver }) => {
        const r = await driver.connect(req);
        this.opts.metrics?.connectPhases(driver.kind, r.phases);
      }),
    );
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed < 0) return;
    // Undo what this ADD connected (Kuryr leaves it plugged).
    const rollback = new Rollback(this.log, { pod: podKey(p.args.K8S_POD_NAMESPACE!, p.args.K8S_POD_NAME!) });
    reqs.forEach(({ req, driver }, i) => {
      if (results[i]!.status === 'fulfilled') rollback.add(`disconnect ${req.ifname}`, () => driver.disconnect(req));
    });
    await rollback.run();
    const err = (results[failed] as PromiseRejectedResult).reason as Error;
    const { req, pv } = reqs[failed]!;
    throw toKuryrError(
      new Error(`connecting ${req.ifname} (${pv.vif.kind}) failed: ${err?.message ?? String(err)}`, { cause: err }),
    );
  }

  /** CNI DEL. */
  async del(p: CniParams, signal?: AbortSignal): Promise<'disconnected' | 'pod-gone' | 'unknown-add' | 'cleaned-up'> {
    const ns = p.args.K8S_POD_NAMESPACE!;
    const name = p.args.K8S_POD_NAME!;
    const key = podKey(ns, name);
    const early = await this.registry.withLock(key, () => {
      const v = this.registry.get(key);
      if (v?.kind === 'gone') {
        this.registry.remove(key);
        return 'pod-gone' as const;
      }
      if (v?.kind === 'entry' && v.containerId !== null && v.containerId !== p.containerId)
        return 'unknown-add' as const;
      return undefined;
    });
    if (early === 'unknown-add') {
      this.log.info('kuryr: DEL for an unknown ADD ignored', { pod: key, containerId: p.containerId });
      return early;
    }
    if (early === 'pod-gone') {
      await this.cleanup(p);
      return early;
    }

    const podUid = p.args.K8S_POD_UID || undefined;
    let entry: RegistryEntry | 'gone' | 'mismatch';
    try {
      entry = await this.registry.waitFor(
        key,
        (v) => {
          if (v?.kind === 'gone') return 'gone' as const;
          if (v?.kind !== 'entry' || v.vifs.length === 0) return undefined;
          // The VIFs of another (newer) pod with this name: not ours to remove.
          if (podUid && v.podUid && v.podUid !== podUid && v.podStatic !== true) return 'mismatch' as const;
          return v;
        },
        this.delTimeoutMs,
        signal,
      );
    } catch (err) {
      if (!(err instanceof RegistryWaitTimeout)) throw err;
      // Kuryr: CNIKuryrPortTimeout -> cleanup of CNI_IFNAME, 204.
      await this.cleanup(p);
      return 'cleaned-up';
    }
    if (entry === 'gone' || entry === 'mismatch') {
      await this.cleanup(p);
      return entry === 'gone' ? 'pod-gone' : 'cleaned-up';
    }

    const objectUid = entry.objectUid;
    return this.registry.withLock(key, async () => {
      const cur = this.registry.get(key);
      if (cur?.kind !== 'entry' || cur.objectUid !== objectUid) {
        await this.cleanup(p);
        return 'cleaned-up' as const;
      }
      if (cur.containerId !== null && cur.containerId !== p.containerId) return 'unknown-add' as const;
      const errors: Error[] = [];
      for (const pv of cur.vifs) {
        try {
          await this.opts.drivers.forVif(pv.vif.kind).disconnect(this.request(p, pv, podUid));
        } catch (err) {
          errors.push(err as Error);
        }
      }
      if (errors.length)
        throw toKuryrError(
          new Error(`disconnect failed: ${errors.map((e) => e.message).join('; ')}`, { cause: errors[0] }),
        );
      this.registry.markUnplugged(key);
      return 'disconnected' as const;
    });
  }

  /** Best effort: every driver removes what it attached for this container id (Kuryr's cleanup). */
  private async cleanup(p: CniParams): Promise<void> {
    const netns = rewriteNetns(p.netns, this.opts.netnsProcDir);
    for (const d of this.opts.drivers.all()) {
      try {
        await disconnectContainer(d, p.containerId, p.ifname, netns || undefined);
      } catch (err) {
        this.log.warn('kuryr: DEL cleanup failed (ignored)', {
          driver: d.kind,
          containerId: p.containerId,
          error: err,
        });
      }
    }
  }
}
