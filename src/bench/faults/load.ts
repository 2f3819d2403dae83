/**
 * Churn load through the real shim, as kubelet drives a CNI plugin: each worker creates a
 * pod sandbox (a fresh netns), ADDs it (vhost-user client, server or veth, host-local
 * IPAM), keeps it a while, DELs it; an ADD that fails is DELeted (the runtime always
 * DELs a sandbox whose set-up failed), and a failing DEL is retried until it succeeds.
 * Some pods are kept live across faults so that every fault hits existing pods too.
 *
 * The {@link Ledger} records every call and its answer: the invariant checks compare the
 * node against what the runtime was told.
 */
import { cniEnvOf, NETWORK, newPodIdentity, sleep, SUBNET, uniform, type FaultNode, type ShimAnswer } from './node';
import type { PodLayoutName, PodMode, TrackedPod } from './invariants';

export interface OpRecord {
  op: 'ADD' | 'DEL' | 'CHECK';
  pod: string;
  t0: number;
  t1: number;
  exit: number;
  code?: number;
  msg?: string;
}

/** Every pod and every call of a run. */
export class Ledger {
  readonly pods = new Map<string, TrackedPod>();

  /** Where the pods' vhost-user files go (the netconf's socketLayout). */
  constructor(readonly layout: PodLayoutName = 'per-pod') {}

  readonly ops: OpRecord[] = [];
  private readonly inFlight = { ADD: 0, DEL: 0, CHECK: 0 };
  private waiters: { op: OpRecord['op']; resolve: () => void }[] = [];

  busy(op: OpRecord['op']): number {
    return this.inFlight[op];
  }

  /** Resolves as soon as an `op` is in flight. */
  whenBusy(op: OpRecord['op']): Promise<void> {
    if (this.inFlight[op] > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ op, resolve }));
  }

  async call(node: FaultNode, op: OpRecord['op'], pod: TrackedPod, stdin = pod.conf): Promise<ShimAnswer> {
    this.inFlight[op]++;
    for (const w of this.waiters.filter((x) => x.op === op)) w.resolve();
    this.waiters = this.waiters.filter((x) => x.op !== op);
    const t0 = performance.now();
    let a: ShimAnswer;
    try {
      a = await node.shim(cniEnvOf(op, pod), stdin);
    } finally {
      this.inFlight[op]--;
    }
    const rec: OpRecord = { op, pod: pod.containerId, t0, t1: performance.now(), exit: a.exit };
    if (a.code !== undefined) rec.code = a.code;
    if (a.msg !== undefined) rec.msg = a.msg;
    this.ops.push(rec);
    return a;
  }

  live(): TrackedPod[] {
    return [...this.pods.values()].filter((p) => p.fate === 'live');
  }
}

export function netconf(node: FaultNode, mode: PodMode, layout: PodLayoutName = 'per-pod'): string {
  return JSON.stringify({
    cniVersion: '1.1.0',
    name: NETWORK,
    type: 'vhostplug',
    mode,
    socketLayout: layout,
    bridge: 'br-int',
    mtu: 1500,
    ipam: { type: 'host-local', dataDir: node.ipamDir, ranges: [[{ subnet: SUBNET }]], routes: [{ dst: '0.0.0.0/0' }] },
  });
}

/** Creates a pod sandbox (its own netns) and tracks it. */
export async function newPod(node: FaultNode, ledger: Ledger, mode: PodMode, name: string): Promise<TrackedPod> {
  const ns = await node.addNetns();
  const pod: TrackedPod = {
    ...newPodIdentity(name, ns.path),
    mode,
    nsName: ns.name,
    conf: netconf(node, mode, ledger.layout),
    fate: 'gone',
  };
  ledger.pods.set(pod.containerId, pod);
  return pod;
}

/** ADD; on success the pod is live (the result kept for CHECK and the checks). */
export async function addPod(node: FaultNode, ledger: Ledger, pod: TrackedPod): Promise<ShimAnswer> {
  const a = await ledger.call(node, 'ADD', pod);
  if (a.exit === 0 && a.json) {
    pod.result = a.json;
    pod.fate = 'live';
  }
  return a;
}

/** DEL until it succeeds, as the runtime retries it; false if it never did within `deadlineMs`. */
export async function delPod(node: FaultNode, ledger: Ledger, pod: TrackedPod, deadlineMs = 180_000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (let i = 0; ; i++) {
    const a = await ledger.call(node, 'DEL', pod);
    if (a.exit === 0) {
      pod.fate = 'gone';
      return true;
    }
    if (Date.now() > end) return false;
    await sleep(Math.min(1000, 50 * 2 ** Math.min(i, 4)));
  }
}

/** The sandbox is gone: its netns is removed (after the last DEL, as the runtime does). */
export async function removeSandbox(node: FaultNode, pod: TrackedPod): Promise<void> {
  await node.delNetns(pod.nsName);
}

export interface ChurnOptions {
  workers: number;
  /** How long an ADDed pod lives before its DEL (ms). */
  holdMs: [number, number];
  /** Chance that an ADDed pod is kept live (across faults) instead of DELeted. */
  keepProbability: number;
  /** Most pods kept live at once (DPDK allows 1024 vhost-user ports per vswitchd). */
  maxKept: number;
}

export const DEFAULT_CHURN: ChurnOptions = { workers: 6, holdMs: [0, 400], keepProbability: 0.1, maxKept: 16 };

const MODES: PodMode[] = ['client', 'server', 'client', 'server', 'veth'];

/** The churn workers. */
export class Churn {
  private running = false;
  private workers: Promise<void>[] = [];
  private seq = 0;
  /** DELs that never succeeded (a finding). */
  readonly stuckDels: TrackedPod[] = [];

  constructor(
    private readonly node: FaultNode,
    private readonly ledger: Ledger,
    private readonly opts: ChurnOptions = DEFAULT_CHURN,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.workers = Array.from({ length: this.opts.workers }, (_, i) => this.worker(i));
  }

  /** Stops starting pods; resolves once every worker finished its current pod (DELs retried to success). */
  async quiesce(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  private async worker(i: number): Promise<void> {
    await sleep(i * 37);
    while (this.running) {
      const mode = MODES[this.seq++ % MODES.length]!;
      const pod = await newPod(this.node, this.ledger, mode, `churn-${this.seq}`);
      const a = await addPod(this.node, this.ledger, pod);
      if (a.exit === 0) {
        await sleep(uniform(...this.opts.holdMs));
        const kept = this.ledger.live().filter((p) => p.podName.startsWith('churn-')).length;
        if (Math.random() < this.opts.keepProbability && kept < this.opts.maxKept) continue;
      }
      if (!(await delPod(this.node, this.ledger, pod))) this.stuckDels.push(pod);
      else await removeSandbox(this.node, pod);
    }
  }
}
