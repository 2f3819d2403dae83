/**
 * A bare ovsdb-server in a fresh temp dir, for the suites that need only the database
 * (the OVSDB client, cache, reconnect and write queue): no root, no DPDK, no
 * ovs-vswitchd, no network namespace. Suites that need ovs-vswitchd to act on the
 * database (the acknowledgement, ofport, vhost-user sockets) use the full sandbox
 * (./sandbox.ts, scripts/ovs-sandbox.sh).
 *
 * The database is initialised as the sandbox's is (an Open_vSwitch row, bridge br-int with
 * the netdev datapath); with nobody to apply it, `cur_cfg` stays 0, so ovs-vsctl writes
 * are made with `--no-wait`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { CacheSpec } from '../../src/ovsdb/cache';
import { run, runAsync } from './proc';
import { needsBinaries } from './skip';

export const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** A cache of every column of Open_vSwitch, Bridge, Port and Interface, by name (what the client suites read). */
export const FULL_CACHE: CacheSpec = {
  database: 'Open_vSwitch',
  tables: {
    Open_vSwitch: {},
    Bridge: { indexes: ['name'] },
    Port: { indexes: ['name'] },
    Interface: { indexes: ['name'] },
  },
};

/** Skip reason when a bare ovsdb-server cannot run here (no root needed). */
export function needsOvsdbServer(): string | undefined {
  return (
    needsBinaries('ovsdb-server', 'ovsdb-tool', 'ovs-vsctl', 'ovsdb-client') ??
    (fs.existsSync(VSWITCH_SCHEMA) ? undefined : `missing ${VSWITCH_SCHEMA}`)
  );
}

export interface OvsdbServer {
  readonly dir: string;
  /** The remote, `unix:<dir>/db.sock`. */
  readonly db: string;
  readonly dbSock: string;
  /** `ovs-vsctl --no-wait --db=<db> ...args`; returns stdout. */
  vsctl(...args: string[]): string;
  /** `ovsdb-client --timeout=10 <command> <db> ...args`; returns stdout. */
  ovsdbClient(command: string, ...args: string[]): string;
  /** Every row of an Open_vSwitch table, from `ovsdb-client -f json dump`. */
  dumpTable(table: string): Record<string, unknown>[];
  /** SIGKILLs ovsdb-server (db.sock stays behind, as after a crash). */
  killDb(): Promise<void>;
  /** Starts ovsdb-server again on the same conf.db (a stale db.sock is removed first). */
  startDb(): Promise<void>;
  /** Stops the server and removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<OvsdbServer>();
let hooked = false;

function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'; // a zombie is dead
  } catch {
    return false;
  }
}

async function waitDead(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** Starts a bare ovsdb-server on a fresh Open_vSwitch database. */
export async function startOvsdbServer(opts: { prefix?: string } = {}): Promise<OvsdbServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'vhp-ovsdb-'));
  const conf = path.join(dir, 'conf.db');
  const dbSock = path.join(dir, 'db.sock');
  const pidFile = path.join(dir, 'ovsdb-server.pid');
  const db = `unix:${dbSock}`;
  const pid = (): number => Number(fs.readFileSync(pidFile, 'utf8').trim());
  const startDb = async (): Promise<void> => {
    fs.rmSync(dbSock, { force: true });
    await runAsync('ovsdb-server', [
      conf,
      `--remote=punix:${dbSock}`,
      `--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`,
      `--pidfile=${pidFile}`,
      '-vconsole:off',
      `--log-file=${path.join(dir, 'ovsdb-server.log')}`,
      '--detach',
      '--no-chdir',
    ]);
  };
  const vsctl = (...args: string[]) => run('ovs-vsctl', [`--db=${db}`, '--no-wait', '--timeout=10', ...args]);
  let stopped: Promise<void> | undefined;
  const server: OvsdbServer = {
    dir,
    db,
    dbSock,
    vsctl,
    ovsdbClient: (command, ...args) => run('ovsdb-client', ['--timeout=10', command, db, ...args]),
    dumpTable(table) {
      const t = JSON.parse(run('ovsdb-client', ['--timeout=10', '-f', 'json', 'dump', db, 'Open_vSwitch', table])) as {
        headings: string[];
        data: unknown[][];
      };
      return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]])));
    },
    async killDb() {
      const p = pid();
      process.kill(p, 'SIGKILL');
      await waitDead(p, 2000);
    },
    startDb,
    stop() {
      stopped ??= (async () => {
        live.delete(server);
        try {
          const p = pid();
          if (pidAlive(p)) {
            process.kill(p, 'SIGTERM');
            await waitDead(p, 2000);
          }
        } catch {
          // never started, or already gone
        }
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  try {
    execFileSync('ovsdb-tool', ['create', conf, VSWITCH_SCHEMA]);
    await startDb();
    vsctl(
      '--',
      'init',
      '--',
      '--may-exist',
      'add-br',
      'br-int',
      '--',
      'set',
      'Bridge',
      'br-int',
      'datapath_type=netdev',
    );
  } catch (e) {
    await server.stop();
    throw e;
  }
  live.add(server);
  if (!hooked) {
    hooked = true;
    // A crashed test run must not leave servers behind.
    process.on('exit', () => {
      for (const s of live) {
        try {
          process.kill(Number(fs.readFileSync(path.join(s.dir, 'ovsdb-server.pid'), 'utf8').trim()), 'SIGKILL');
        } catch {
          // gone
        }
        fs.rmSync(s.dir, { recursive: true, force: true });
      }
    });
  }
  return server;
}

/** One bare ovsdb-server for a whole `describe` block; returns a getter to use inside tests. */
export function useOvsdbServer(opts: { prefix?: string } = {}): () => OvsdbServer {
  let s: OvsdbServer | undefined;
  beforeAll(async () => {
    s = await startOvsdbServer(opts);
  });
  afterAll(async () => {
    await s?.stop();
  });
  return () => {
    if (!s) throw new Error('useOvsdbServer: the server is not started (use the getter inside tests)');
    return s;
  };
}
