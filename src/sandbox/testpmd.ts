/**
 * dpdk-testpmd as a DPDK "pod application" for tests: one virtio_user port per vhost-user socket,
 * io forwarding, no hugepages. Runs interactive (`-i`) so that stats can be asked for at any
 * time with `show port stats all`; stdout is unbuffered with stdbuf so replies are not stuck in
 * a pipe buffer.
 *
 * ```ts
 * const tp = await startTestpmd({ ports: [{ path: sock, server: true }] });
 * await tp.startForwarding();                      // `start tx_first`
 * const [p0] = await tp.waitForTraffic();          // RX and TX > 0 on every port
 * await tp.stop();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { pidAlive } from './proc';

export interface TestpmdPort {
  /** The vhost-user socket path. */
  path: string;
  /** testpmd listens on `path` (vhost-user server; pairs with an OVS dpdkvhostuserclient port). */
  server?: boolean;
  /** The port's MAC address (virtio_user `mac=`), e.g. the `vhostmac` of a config file. */
  mac?: string;
  /** Number of queue pairs (virtio_user `queues=`, default 1). */
  queues?: number;
}

export interface TestpmdOptions {
  ports: TestpmdPort[];
  /** EAL --lcores (default `0@0,1@0`: main and forwarding lcore both on CPU 0, away from the OVS PMD). */
  lcores?: string;
  /** EAL -m in MB (default 256). */
  memoryMb?: number;
  /** testpmd forwarding mode (default `io`; `macswap` answers each packet to its sender). */
  forwardMode?: string;
  /** Extra testpmd application args (after `--`). */
  appArgs?: string[];
  /** Milliseconds to wait for the first prompt (a server port waits for OVS to connect). */
  readyTimeoutMs?: number;
  /** Hard lifetime cap in seconds: `timeout` kills testpmd even if the test process dies. */
  maxLifetimeS?: number;
  /**
   * Runs testpmd through a wrapper (e.g. into a pod's netns and mount namespace, as its
   * non-root user): gets `stdbuf … dpdk-testpmd …` and returns the argv to run instead. The
   * wrapper must exec (not fork) so that stdin, signals and the exit reach testpmd.
   */
  wrap?: (argv: string[]) => string[];
  /** DPDK's runtime directory base as testpmd sees it (default /var/run/dpdk; a non-root user's is $XDG_RUNTIME_DIR/dpdk). */
  runtimeDir?: string;
}

/** Counters of one port from `show port stats all`. */
export interface PortStats {
  port: number;
  rxPackets: number;
  rxMissed: number;
  rxBytes: number;
  rxErrors: number;
  txPackets: number;
  txErrors: number;
  txBytes: number;
}

export interface Testpmd {
  /** The DPDK --file-prefix (runtime dir /var/run/dpdk/<prefix>). */
  readonly prefix: string;
  /** Everything testpmd printed so far. */
  output(): string;
  /** Sends one interactive command and resolves with its output (up to the next prompt). */
  command(line: string, timeoutMs?: number): Promise<string>;
  /** `start tx_first`: starts io forwarding after sending one burst on every port. */
  startForwarding(): Promise<void>;
  /** Per-port counters. */
  stats(): Promise<PortStats[]>;
  /**
   * Polls stats until every port has RX and TX above `minPackets`. If nothing arrives for a
   * while (the first burst was sent before OVS had the peer up), sends a new burst.
   */
  waitForTraffic(opts?: { minPackets?: number; timeoutMs?: number }): Promise<PortStats[]>;
  /** Quits testpmd (SIGKILL fallback) and removes its DPDK runtime dir. Safe to call twice. */
  stop(): Promise<void>;
}

const PROMPT = 'testpmd> ';
const live = new Set<() => void>();
let exitHookInstalled = false;

/** Parses the `NIC statistics for port N` blocks of `show port stats all`. */
export function parsePortStats(text: string): PortStats[] {
  const re =
    /NIC statistics for port (\d+)\s+#+\s+RX-packets:\s*(\d+)\s+RX-missed:\s*(\d+)\s+RX-bytes:\s*(\d+)\s+RX-errors:\s*(\d+)[\s\S]*?TX-packets:\s*(\d+)\s+TX-errors:\s*(\d+)\s+TX-bytes:\s*(\d+)/g;
  const out: PortStats[] = [];
  for (const m of text.matchAll(re)) {
    const n = m.slice(1).map(Number);
    out.push({
      port: n[0]!,
      rxPackets: n[1]!,
      rxMissed: n[2]!,
      rxBytes: n[3]!,
      rxErrors: n[4]!,
      txPackets: n[5]!,
      txErrors: n[6]!,
      txBytes: n[7]!,
    });
  }
  return out;
}

/** The EAL `--vdev` value for port `i`. Commas would split the devargs, so paths may not have any. */
export function vdevArg(i: number, p: TestpmdPort): string {
  if (p.path.includes(',')) throw new Error(`testpmd: a vhost-user path cannot contain ',': ${p.path}`);
  let arg = `net_virtio_user${i},path=${p.path}`;
  if (p.server) arg += ',server=1';
  if (p.mac) arg += `,mac=${p.mac}`;
  if (p.queues && p.queues > 1) arg += `,queues=${p.queues}`;
  return arg;
}

/** The children of a pid (testpmd runs under `timeout`). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const c of childPids(pid)) {
    try {
      process.kill(c, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Starts testpmd and resolves at its first prompt (all ports initialised). */
export async function startTestpmd(opts: TestpmdOptions): Promise<Testpmd> {
  if (opts.ports.length === 0) throw new Error('startTestpmd: no ports');
  const prefix = `vhp-tp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const eal = [
    `--lcores=${opts.lcores ?? '0@0,1@0'}`,
    '--no-pci',
    '--no-huge',
    '-m',
    String(opts.memoryMb ?? 256),
    '--file-prefix',
    prefix,
    ...opts.ports.map((p, i) => `--vdev=${vdevArg(i, p)}`),
  ];
  // --no-huge cannot hold the default 155k-mbuf pool; 16k is plenty for io forwarding.
  const app = ['-i', '--total-num-mbufs=16384', `--forward-mode=${opts.forwardMode ?? 'io'}`, ...(opts.appArgs ?? [])];
  const pmd = ['stdbuf', '-o0', '-e0', 'dpdk-testpmd', ...eal, '--', ...app];
  const argv = ['-s', 'INT', '-k', '5', String(opts.maxLifetimeS ?? 300), ...(opts.wrap ? opts.wrap(pmd) : pmd)];
  const runtimeDir = `${opts.runtimeDir ?? '/var/run/dpdk'}/${prefix}`;
  const child: ChildProcess = spawn('timeout', argv, { stdio: ['pipe', 'pipe', 'pipe'] });

  // The prompt and command output are looked for on stdout alone: testpmd writes some
  // errors to stderr unbuffered, and in a merged stream one can land inside the prompt
  // ("tes<error>tpmd> "). `log` keeps both, in arrival order, for diagnostics.
  let out = '';
  let log = '';
  let exited = false;
  let exitInfo = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (b: Buffer) => {
    const text = b.toString('utf8');
    out += text;
    log += text;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (b: Buffer) => {
    log += b.toString('utf8');
  });
  child.on('exit', (code, signal) => {
    exited = true;
    exitInfo = signal ? `signal ${signal}` : `exit ${code}`;
    for (const w of waiters.splice(0)) w();
  });
  // A stdin write after testpmd died raises EPIPE on the stream; stop()/command() report instead.
  child.stdin!.on('error', () => undefined);

  const cleanupSync = () => {
    killTree(child.pid);
    rmSync(runtimeDir, { recursive: true, force: true });
  };
  live.add(cleanupSync);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of [...live]) f();
    });
  }

  /** Resolves once `out` (from `from`) contains the prompt; returns the text before it. */
  const untilPrompt = (from: number, timeoutMs: number, what: string) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`testpmd: timed out after ${timeoutMs} ms waiting for ${what}\n${log.slice(-3000)}`));
      }, timeoutMs);
      const check = () => {
        const i = out.indexOf(PROMPT, from);
        if (i >= 0) {
          clearTimeout(timer);
          resolve(out.slice(from, i));
        } else if (exited) {
          clearTimeout(timer);
          reject(new Error(`testpmd ${exitInfo} while waiting for ${what}\n${log.slice(-3000)}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });

  let queue: Promise<unknown> = Promise.resolve();
  const command = (line: string, timeoutMs = 10_000): Promise<string> => {
    const p = queue.then(async () => {
      if (exited) throw new Error(`testpmd ${exitInfo}; cannot run '${line}'`);
      const from = out.length;
      child.stdin!.write(`${line}\n`);
      return untilPrompt(from, timeoutMs, `'${line}'`);
    });
    queue = p.catch(() => undefined);
    return p;
  };

  try {
    await untilPrompt(0, opts.readyTimeoutMs ?? 20_000, 'the first prompt');
  } catch (e) {
    cleanupSync();
    live.delete(cleanupSync);
    throw e;
  }

  let stopped: Promise<void> | undefined;
  const tp: Testpmd = {
    prefix,
    output: () => log,
    command,
    async startForwarding() {
      await command('start tx_first');
    },
    async stats() {
      const text = await command('show port stats all');
      const s = parsePortStats(text);
      if (s.length !== opts.ports.length) {
        throw new Error(`testpmd: expected stats for ${opts.ports.length} ports, parsed ${s.length}:\n${text}`);
      }
      return s;
    },
    async waitForTraffic({ minPackets = 0, timeoutMs = 15_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      let lastBurst = Date.now();
      for (;;) {
        const s = await tp.stats();
        if (s.every((p) => p.rxPackets > minPackets && p.txPackets > minPackets)) return s;
        if (Date.now() > deadline) {
          throw new Error(`testpmd: no traffic within ${timeoutMs} ms: ${JSON.stringify(s)}`);
        }
        if (Date.now() - lastBurst > 2_000) {
          // The burst went out before OVS had the other side up: inject a new one.
          await command('stop');
          await command('start tx_first');
          lastBurst = Date.now();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          child.stdin!.write('quit\n');
          child.stdin!.end();
          const deadline = Date.now() + 5_000;
          while (!exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          if (!exited) killTree(child.pid);
          while (!exited) await new Promise((r) => setTimeout(r, 20));
        }
        // testpmd runs as our child's child; make sure it is not left as a running orphan.
        for (const c of childPids(child.pid!)) if (pidAlive(c)) killTree(c);
        rmSync(runtimeDir, { recursive: true, force: true });
        live.delete(cleanupSync);
      })();
      return stopped;
    },
  };
  return tp;
}
