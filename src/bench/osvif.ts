/**
 * os-vif (Debian's python3-os-vif, ovs plugin, native backend) driven from TS through
 * scripts/osvif-driver.py: one long-lived Python process, so per-call figures exclude its
 * ~0.6 s start-up (reported separately as `initMs`). The parity tests and the benchmark
 * baseline both use it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { OvoPrimitive } from '../vif/ovo';

/** Debian's interpreter: the only one that sees the python3-os-vif package. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const OSVIF_DRIVER_SCRIPT = path.resolve(__dirname, '../../scripts/osvif-driver.py');

/** Why os-vif cannot run here, or undefined when it can. */
export function osVifUnavailable(): string | undefined {
  if (!fs.existsSync(DEBIAN_PYTHON)) return `${DEBIAN_PYTHON} not found`;
  if (!fs.existsSync('/usr/lib/python3/dist-packages/os_vif'))
    return 'python3-os-vif is not installed (apt-get install python3-os-vif)';
  return undefined;
}

export class OsVifError extends Error {
  readonly code = 'EOSVIF';
  constructor(message: string) {
    super(`os-vif: ${message}`);
    this.name = 'OsVifError';
  }
}

export class OsVif {
  private readonly waiters: ((line: string) => void)[] = [];
  private stderr = '';
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    /** os-vif import + initialize() time, ms. */
    readonly initMs: number,
    lines: readline.Interface,
  ) {
    lines.on('line', (l) => this.waiters.shift()?.(l));
  }

  /** Starts the driver against `db` (unix:PATH or tcp:HOST:PORT) and waits until os-vif is initialised. */
  static async start(db: string, timeoutS = 120): Promise<OsVif> {
    const child = spawn(DEBIAN_PYTHON, [OSVIF_DRIVER_SCRIPT, '--db', db, '--timeout', String(timeoutS)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: '/',
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const lines = readline.createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) =>
        reject(new OsVifError(`driver exited with ${code} before it was ready: ${stderr.slice(-2000)}`)),
      );
    });
    const ready = JSON.parse(first) as { ready?: boolean; init_ms?: number };
    if (!ready.ready) throw new OsVifError(`unexpected first line ${first}`);
    const o = new OsVif(child, ready.init_ms ?? 0, lines);
    child.stderr.on('data', (d: Buffer) => {
      o.stderr = (o.stderr + d.toString()).slice(-8000);
    });
    return o;
  }

  private call(req: object): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.waiters.push((line) => {
        const r = JSON.parse(line) as { ok: boolean; ms?: number; error?: string };
        if (r.ok) resolve(r.ms ?? 0);
        else reject(new OsVifError(r.error ?? line));
      });
      this.child.stdin.write(JSON.stringify(req) + '\n');
    });
  }

  /** os_vif.plug(); resolves with os-vif's own timing of the call, ms. */
  plug(vif: OvoPrimitive, instance: { uuid: string; name: string }): Promise<number> {
    return this.call({ cmd: 'plug', vif, instance });
  }

  /** os_vif.unplug(); resolves with its timing, ms. */
  unplug(vif: OvoPrimitive, instance: { uuid: string; name: string }): Promise<number> {
    return this.call({ cmd: 'unplug', vif, instance });
  }

  /** The driver's recent stderr (os-vif logs), for messages. */
  get log(): string {
    return this.stderr;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.stdin.write(JSON.stringify({ cmd: 'quit' }) + '\n');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.child.kill('SIGKILL');
        resolve();
      }, 5000);
      this.child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
