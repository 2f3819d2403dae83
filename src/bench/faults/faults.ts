/**
 * The faults of issue 13, each injected under churn at a random point, from outside the
 * daemon as the node would suffer it. Every run is followed by the campaign's checkpoint
 * (src/bench/faults/campaign.ts); what a fault checks beyond that is in its own `problems`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { LatencyRecorder } from '../stats';
import type { Fault, FaultContext, RunOutcome } from './campaign';
import { portNameOf, type PodMode, type TrackedPod } from './invariants';
import { addPod, delPod, netconf, newPod, removeSandbox, type OpRecord } from './load';
import { ACK_TIMEOUT_S, newPodIdentity, sleep, uniform } from './node';
import { kuryrApiFault } from './kuryr-fault';

interface Injected {
  /** When the fault was removed (component back, space returned). */
  releasedAt: number;
  problems?: string[];
  notes?: string[];
}

/**
 * Churn runs; after a random warm-up `inject` injects and removes the fault; the probe
 * measures recovery; the load quiesces; `evaluate` judges the run from the ledger.
 */
async function underChurn(
  ctx: FaultContext,
  inject: () => Promise<Injected>,
  evaluate: (ops: OpRecord[], inj: Injected) => Pick<RunOutcome, 'hit'> & Partial<RunOutcome>,
): Promise<RunOutcome> {
  const first = ctx.ledger.ops.length;
  ctx.churn.start();
  let inj: Injected;
  let recoveryMs: number;
  try {
    await sleep(uniform(300, 1000));
    inj = await inject();
    recoveryMs = await ctx.probeRecovery(inj.releasedAt);
    await sleep(uniform(200, 600));
  } finally {
    await ctx.churn.quiesce();
  }
  const ev = evaluate(ctx.ledger.ops.slice(first), inj);
  return {
    recoveryMs,
    hit: ev.hit,
    problems: [...(inj.problems ?? []), ...(ev.problems ?? [])],
    notes: [...(inj.notes ?? []), ...(ev.notes ?? [])],
    figures: ev.figures,
  };
}

const inFlightAt = (ops: OpRecord[], op: OpRecord['op'], t: number): number =>
  ops.filter((o) => o.op === op && o.t0 < t && o.t1 > t).length;

// ---------------------------------------------------------------- 1. process kills

function killDaemonDuring(op: 'ADD' | 'DEL'): Fault {
  return {
    id: `daemon-kill-${op.toLowerCase()}`,
    group: 1,
    title: `SIGKILL of the daemon mid-${op}`,
    how: `SIGKILL 0–40 ms after a ${op} entered the shim, daemon restarted at once (as its supervisor would)`,
    runs: { quick: 1, full: 8 },
    run(ctx) {
      let tKill = 0;
      return underChurn(
        ctx,
        async () => {
          await ctx.ledger.whenBusy(op);
          await sleep(uniform(0, 40));
          tKill = performance.now();
          await ctx.node.killDaemon();
          const releasedAt = performance.now();
          ctx.node.spawnDaemon();
          return { releasedAt };
        },
        (ops) => {
          const n = inFlightAt(ops, op, tKill);
          return { hit: n > 0, figures: { [`${op}sInFlightAtKill`]: n } };
        },
      );
    },
  };
}

const RECONCILE_DONE = 'daemon: start-up reconciliation done';

const killMidReconcile: Fault = {
  id: 'daemon-kill-reconcile',
  group: 1,
  title: 'SIGKILL of the daemon mid-reconciliation',
  how: 'pods whose sandboxes vanished without a DEL; the restarted daemon SIGKILLed after it removed a random number of them (mid start-up reconciliation), then restarted',
  runs: { quick: 1, full: 6 },
  async run(ctx) {
    const { node, ledger } = ctx;
    const problems: string[] = [];
    const notes: string[] = [];
    const modes: PodMode[] = ['client', 'server', 'veth'];
    const pods: TrackedPod[] = [];
    for (let i = 0; i < (ctx.quick ? 6 : 9); i++) {
      const pod = await newPod(node, ledger, modes[i % 3]!, `vanished-${i}`);
      const a = await addPod(node, ledger, pod);
      if (a.exit === 0) pods.push(pod);
      else {
        problems.push(`set-up ADD failed: ${a.msg}`);
        await delPod(node, ledger, pod);
        await removeSandbox(node, pod);
      }
    }
    // The sandboxes go away without a DEL reaching us (lost DEL): only the reconciler can clean up.
    for (const p of pods) {
      await node.delNetns(p.nsName);
      p.fate = 'gone';
      p.lostDel = true;
    }
    const files = new Set(pods.map((p) => `${p.containerId}:${p.ifname}.json`));
    const recordsLeft = () => fs.readdirSync(node.stateDir).filter((f) => files.has(f)).length;
    const portNames = new Set(pods.map(portNameOf));
    const portsLeft = () =>
      node.sb
        .vsctl('list-ports', 'br-int')
        .split('\n')
        .filter((n) => portNames.has(n)).length;
    await node.killDaemon();
    const d = node.spawnDaemon();
    const target = 1 + Math.floor(Math.random() * Math.max(1, pods.length - 1));
    let hit = false;
    for (;;) {
      if (!d.running) throw new Error(`the daemon exited during start-up:\n${d.tail()}`);
      if (d.logged(RECONCILE_DONE).length > 0) break;
      if (pods.length - recordsLeft() >= target) {
        await sleep(uniform(0, 15));
        await node.killDaemon();
        // A hit is a kill that left work behind (judged on the node, not on the daemon's log,
        // which reaches us through a pipe and can lag the work it reports).
        hit = recordsLeft() + portsLeft() > 0;
        break;
      }
      await sleep(2);
    }
    let recoveryMs: number | undefined;
    if (!d.running) {
      const releasedAt = performance.now();
      node.spawnDaemon();
      recoveryMs = await ctx.probeRecovery(releasedAt);
    } else {
      notes.push('a run whose reconciliation finished before the kill counts as a miss');
      recoveryMs = await ctx.probeRecovery(performance.now());
    }
    const next = node.daemon!.logged(RECONCILE_DONE).pop();
    const finished = next ? (next.dead as number) + (next.rolledBack as number) + (next.orphanPorts as number) : 0;
    if (hit && finished === 0)
      problems.push('the killed reconciliation left work, but the next start-up reconciliation found none');
    return {
      recoveryMs,
      hit,
      problems,
      notes,
      figures: { vanishedPods: pods.length, removedBeforeKill: target, finishedByNextStart: finished },
    };
  },
};

const killOvsdb: Fault = {
  id: 'ovsdb-server-kill',
  group: 1,
  title: 'SIGKILL of ovsdb-server, restart',
  how: 'SIGKILL 0–30 ms after an ADD entered the shim, restarted on the same conf.db after 0.2–1.5 s',
  runs: { quick: 1, full: 8 },
  run(ctx) {
    let tKill = 0;
    return underChurn(
      ctx,
      async () => {
        await ctx.ledger.whenBusy('ADD');
        await sleep(uniform(0, 30));
        tKill = performance.now();
        await ctx.node.sb.killDb();
        await sleep(uniform(200, 1500));
        await ctx.node.sb.startDb();
        return { releasedAt: performance.now() };
      },
      (ops) => {
        const n = inFlightAt(ops, 'ADD', tKill);
        return { hit: n > 0, figures: { ADDsInFlightAtKill: n } };
      },
    );
  },
};

function configGeneration(file: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { generation?: number }).generation;
  } catch {
    return undefined;
  }
}

const killVswitchd: Fault = {
  id: 'ovs-vswitchd-kill',
  group: 1,
  title: 'SIGKILL of ovs-vswitchd, restart',
  how: 'SIGKILL 0–30 ms after an ADD entered the shim, restarted after 0.1–0.8 s; live client-mode sockets must be moved back and `generation` bumped',
  runs: { quick: 1, full: 6 },
  run(ctx) {
    const { node, ledger, layout } = ctx;
    let tKill = 0;
    let before: { pod: TrackedPod; file: string; gen: number }[] = [];
    return underChurn(
      ctx,
      async () => {
        await ledger.whenBusy('ADD');
        await sleep(uniform(0, 30));
        // Live client-mode pods now (their sockets die with vswitchd).
        before = ledger
          .live()
          .filter((p) => p.mode === 'client')
          .map((pod) => ({
            pod,
            file: layout.configPath(node.mountPoint, pod),
            gen: configGeneration(layout.configPath(node.mountPoint, pod)) ?? -1,
          }));
        tKill = performance.now();
        await node.killVswitchd();
        await sleep(uniform(100, 800));
        await node.restartVswitchd();
        return { releasedAt: performance.now() };
      },
      (ops) => {
        const problems: string[] = [];
        for (const b of before) {
          if (b.pod.fate !== 'live') continue;
          const g = configGeneration(b.file);
          if (g === undefined || g <= b.gen)
            problems.push(`${b.pod.podName}: config generation ${g} after the restart, ${b.gen} before`);
        }
        const n = inFlightAt(ops, 'ADD', tKill);
        return {
          hit: n > 0,
          problems,
          figures: { ADDsInFlightAtKill: n, clientSocketsRestored: before.filter((b) => b.pod.fate === 'live').length },
        };
      },
    );
  },
};

const stopVswitchd: Fault = {
  id: 'ovs-vswitchd-sigstop',
  group: 1,
  title: 'ovs-vswitchd frozen past the ack timeout',
  how: `SIGSTOP while an ADD is in flight, for the ack timeout (${ACK_TIMEOUT_S} s) + 0.5–1.5 s, then SIGCONT`,
  runs: { quick: 1, full: 4 },
  run(ctx) {
    let window: [number, number] = [0, 0];
    return underChurn(
      ctx,
      async () => {
        await ctx.ledger.whenBusy('ADD');
        const pid = ctx.node.vswitchdPid()!;
        window = [performance.now(), 0];
        process.kill(pid, 'SIGSTOP');
        try {
          await sleep(ACK_TIMEOUT_S * 1000 + uniform(500, 1500));
        } finally {
          process.kill(pid, 'SIGCONT');
        }
        window[1] = performance.now();
        return { releasedAt: window[1] };
      },
      (ops) => {
        const timedOut = ops.filter(
          (o) => o.exit !== 0 && o.t1 >= window[0] && /cur_cfg|acknowledg|time/i.test(o.msg ?? ''),
        );
        return { hit: timedOut.length > 0, figures: { opsTimedOut: timedOut.length } };
      },
    );
  },
};

// ---------------------------------------------------------------- 2. filesystems

function fsFault(target: 'state' | 'mount', kind: 'enospc' | 'erofs'): Fault {
  const what = target === 'state' ? 'the state dir' : 'the mount point (and OVS socket dir)';
  const cause = kind === 'enospc' ? /ENOSPC|no space/i : /EROFS|read-only/i;
  return {
    id: `${target}-${kind}`,
    group: 2,
    title: `${what} ${kind === 'enospc' ? 'full (ENOSPC)' : 'read-only (EROFS)'}`,
    how:
      kind === 'enospc'
        ? `a filler file takes the last block of ${what}'s tmpfs for 1.5–3 s, then is removed`
        : `${what}'s tmpfs remounted read-only for 1.5–3 s, then read-write`,
    runs: { quick: 1, full: 6 },
    run(ctx) {
      const dir = target === 'state' ? ctx.node.stateDir : ctx.node.vfs;
      let window: [number, number] = [0, 0];
      return underChurn(
        ctx,
        async () => {
          window = [performance.now(), 0];
          let filler: string | undefined;
          if (kind === 'enospc') filler = ctx.node.fill(dir);
          else await ctx.node.remount(dir, 'ro');
          try {
            await sleep(uniform(1500, 3000));
          } finally {
            if (filler) fs.unlinkSync(filler);
            else await ctx.node.remount(dir, 'rw');
          }
          window[1] = performance.now();
          return { releasedAt: window[1] };
        },
        (ops) => {
          const failed = ops.filter((o) => o.exit !== 0 && o.t1 >= window[0] && o.t0 <= window[1]);
          const problems: string[] = [];
          // Clear errors: a CNI error with a code and a message, the cause named at least once.
          for (const o of failed)
            if (o.code === undefined || !o.msg)
              problems.push(`${o.op} failed without a CNI error: ${o.msg ?? '(no output)'}`);
          if (failed.length > 0 && !failed.some((o) => cause.test(o.msg ?? '')))
            problems.push(
              `no error named the cause (${cause.source}): ${failed
                .map((o) => o.msg)
                .slice(0, 3)
                .join(' | ')}`,
            );
          return { hit: failed.length > 0, problems, figures: { opsFailedDuringFault: failed.length } };
        },
      );
    },
  };
}

// ---------------------------------------------------------------- 3. load and the shim socket

const MAX_VHOST_PORTS = 1024;

const addFlood: Fault = {
  id: 'add-flood-1000',
  group: 3,
  title: '1000 concurrent ADDs against --max-concurrent 32',
  how: '1000 shim processes started at once (vhost-user, half client half server, host-local IPAM), every pod checked on the node and through CNI CHECK (100 of them in the quick run), then 1000 concurrent DELs; daemon RSS sampled every 100 ms',
  runs: { quick: 1, full: 1 },
  async run(ctx) {
    const { node, ledger } = ctx;
    const problems: string[] = [];
    const notes: string[] = [];
    const liveVhu = ledger.live().filter((p) => p.mode !== 'veth').length;
    const n = Math.min(1000, MAX_VHOST_PORTS - 4 - liveVhu);
    if (n < 1000)
      notes.push(
        `flood of ${n}: DPDK allows ${MAX_VHOST_PORTS} vhost-user ports per vswitchd and ${liveVhu} were live`,
      );
    const ns = await node.addNetns();
    const pods: TrackedPod[] = Array.from({ length: n }, (_, i) => {
      const mode: PodMode = i % 2 ? 'client' : 'server';
      const pod: TrackedPod = {
        ...newPodIdentity(`flood-${i}`, ns.path),
        mode,
        nsName: ns.name,
        conf: netconf(node, mode, ledger.layout),
        fate: 'gone',
      };
      ledger.pods.set(pod.containerId, pod);
      return pod;
    });
    const d = node.daemon!;
    const baseline = d.rssKiB() ?? 0;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, d.rssKiB() ?? 0)), 100);
    try {
      const t0 = performance.now();
      const answers = await Promise.all(pods.map((p) => addPod(node, ledger, p)));
      const addS = (performance.now() - t0) / 1000;
      const unanswered = answers.filter((a) => !a.json || (a.exit !== 0 && a.code === undefined));
      if (unanswered.length)
        problems.push(
          `${unanswered.length} ADDs got no CNI answer, e.g. ${unanswered[0]!.stdout || unanswered[0]!.stderr}`,
        );
      const failed = answers.filter((a) => a.exit !== 0).length;
      const lat = new LatencyRecorder();
      for (const a of answers) if (a.exit === 0) lat.record(a.ms);
      // The runtime DELs every sandbox whose ADD failed before anything else happens to it.
      const dropped = await Promise.all(pods.filter((p) => p.fate !== 'live').map((p) => delPod(node, ledger, p)));
      if (dropped.some((ok) => !ok))
        problems.push(`${dropped.filter((ok) => !ok).length} DELs of failed ADDs never succeeded`);
      // Every pod is checked on the node; CNI CHECK (an IPAM exec each) on 100 of them in the quick run.
      const cp = await ctx.checkpoint('flood: all live', ctx.quick ? 100 : undefined);
      problems.push(
        ...cp.lost.map((l) => `lost under the flood: ${l}`),
        ...cp.leaked.map((l) => `leaked under the flood: ${l}`),
      );
      const t1 = performance.now();
      const dels = await Promise.all(pods.filter((p) => p.fate === 'live').map((p) => delPod(node, ledger, p)));
      const delS = (performance.now() - t1) / 1000;
      if (dels.some((ok) => !ok)) problems.push(`${dels.filter((ok) => !ok).length} DELs never succeeded`);
      clearInterval(sampler);
      const after = d.rssKiB() ?? 0;
      // Bounded: --max-concurrent keeps at most 32 attachments in the work at once.
      if (peak - baseline > 512 * 1024)
        problems.push(`RSS grew by ${Math.round((peak - baseline) / 1024)} MiB under the flood (bound 512 MiB)`);
      if (!d.running) problems.push('the daemon died under the flood');
      const s = lat.summary();
      return {
        hit: true,
        problems,
        notes,
        figures: {
          adds: n,
          addsFailed: failed,
          addAllSeconds: Math.round(addS * 10) / 10,
          addP50ms: s.p50,
          addMaxMs: s.max,
          delAllSeconds: Math.round(delS * 10) / 10,
          rssBaselineMiB: Math.round(baseline / 1024),
          rssPeakMiB: Math.round(peak / 1024),
          rssAfterMiB: Math.round(after / 1024),
        },
      };
    } finally {
      clearInterval(sampler);
      await node.delNetns(ns.name);
    }
  },
};

/** Frames a well-behaved shim would never send. */
function malformedFrames(): Buffer[] {
  const frame = (body: Buffer | string): Buffer => {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    return Buffer.concat([h, b]);
  };
  const rnd = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256)));
  return [
    rnd(1 + Math.floor(Math.random() * 200)),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
    frame(''),
    frame('{not json'),
    frame('[1,2,3]'),
    frame('{"v":1}'),
    frame('{"v":1,"env":{"CNI_COMMAND":5},"stdin":""}'),
    frame('{"v":99,"env":{"CNI_COMMAND":"ADD"},"stdin":"{}"}'),
    frame(
      Buffer.concat([
        Buffer.from('{"v":1,"env":{"CNI_COMMAND":"ADD"},"stdin":"'),
        Buffer.from([0xc3, 0x28, 0xa0, 0xa1]),
        Buffer.from('"}'),
      ]),
    ),
    frame(
      '{"v":1,"env":{"CNI_COMMAND":"ADD","CNI_CONTAINERID":"../../etc","CNI_IFNAME":"eth0","CNI_NETNS":"/x","CNI_PATH":"/usr/lib/cni"},"stdin":"{}"}',
    ),
    frame(JSON.stringify({ v: 1, env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'x'.repeat(5000) }, stdin: '{}' })),
    Buffer.concat([
      frame('{"v":1,"env":{"CNI_COMMAND":"VERSION"},"stdin":""}'),
      frame('{"v":1,"env":{"CNI_COMMAND":"VERSION"},"stdin":""}'),
    ]),
    Buffer.from([0, 0, 0, 100, 123, 34]),
  ];
}

/** Sends `data` on a fresh connection; resolves with what came back and whether the daemon closed it. */
function sendGarbage(socket: string, data: Buffer, timeoutMs = 5000): Promise<{ answered: boolean; closed: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    let got = 0;
    const t = setTimeout(() => {
      c.destroy();
      resolve({ answered: got > 0, closed: false });
    }, timeoutMs);
    c.on('connect', () => c.write(data));
    c.on('data', (b: Buffer) => (got += b.length));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(t);
      resolve({ answered: got > 0, closed: true });
    });
  });
}

const shimGarbage: Fault = {
  id: 'shim-socket-garbage',
  group: 3,
  title: 'malformed frames, half-written requests and silent clients on the shim socket',
  how: '200 connections that never write, 100 that stop half-way through a frame, and 13 kinds of malformed frames sent over 16 connections at once for 3 s, during churn',
  runs: { quick: 1, full: 3 },
  async run(ctx) {
    const { node, ledger, churn } = ctx;
    const problems: string[] = [];
    const first = ledger.ops.length;
    const held: net.Socket[] = [];
    churn.start();
    let window: [number, number] = [0, 0];
    let sent = 0;
    let answered = 0;
    let closed = 0;
    let cutByDaemon = 0;
    try {
      await sleep(uniform(500, 1000));
      window = [performance.now(), 0];
      for (let i = 0; i < 300; i++) {
        const c = net.connect(node.socket);
        c.on('error', () => undefined);
        c.on('close', () => cutByDaemon++);
        if (i >= 200) c.on('connect', () => c.write(Buffer.from([0, 0, 0x10, 0, 0x7b, 0x22, 0x76])));
        held.push(c);
      }
      const frames = malformedFrames();
      const until = performance.now() + 3000;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (performance.now() < until) {
            const r = await sendGarbage(node.socket, frames[sent++ % frames.length]!);
            if (r.answered) answered++;
            if (r.closed) closed++;
          }
        }),
      );
      window[1] = performance.now();
      if (!ctx.quick) {
        // The daemon's 30 s request timeout must cut the silent and half-written clients.
        const deadline = Date.now() + 40_000;
        while (cutByDaemon < held.length && Date.now() < deadline) await sleep(250);
        if (cutByDaemon < held.length)
          problems.push(`${held.length - cutByDaemon} silent connections still open after 40 s`);
      }
    } finally {
      const cutBefore = cutByDaemon;
      for (const c of held) c.destroy();
      await churn.quiesce();
      cutByDaemon = cutBefore;
    }
    const ops = ledger.ops.slice(first);
    const during = ops.filter((o) => o.op === 'ADD' && o.t0 >= window[0] && o.t1 <= window[1]);
    const beforeAdds = ops.filter((o) => o.op === 'ADD' && o.t1 < window[0] && o.exit === 0);
    const failedDuring = during.filter((o) => o.exit !== 0);
    if (during.length === 0) problems.push('no ADD completed during the flood (churn starved?)');
    for (const o of failedDuring) problems.push(`ADD failed during the garbage: ${o.code}: ${o.msg}`);
    if (!node.daemon?.running) problems.push('the daemon died');
    const p50 = (xs: OpRecord[]) => {
      const s = xs.map((o) => o.t1 - o.t0).sort((a, b) => a - b);
      return s.length ? Math.round(s[Math.floor(s.length / 2)]!) : 0;
    };
    return {
      hit: sent > 0,
      problems,
      notes: ctx.quick ? ['the 30 s cut of silent clients is checked in the full campaign only'] : [],
      figures: {
        malformedSent: sent,
        answeredWithError: answered,
        closedByDaemon: closed,
        silentClients: held.length,
        silentCutByDaemon: cutByDaemon,
        addsDuring: during.length,
        addP50DuringMs: p50(during),
        addP50BeforeMs: p50(beforeAdds),
      },
    };
  },
};

/** Every fault, in the order of issue 13. */
export const FAULTS: Fault[] = [
  killDaemonDuring('ADD'),
  killDaemonDuring('DEL'),
  killMidReconcile,
  killOvsdb,
  killVswitchd,
  stopVswitchd,
  fsFault('state', 'enospc'),
  fsFault('state', 'erofs'),
  fsFault('mount', 'enospc'),
  fsFault('mount', 'erofs'),
  addFlood,
  shimGarbage,
  kuryrApiFault,
];
