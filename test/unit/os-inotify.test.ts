import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { native, RawInotifyEvent } from '../../src/native';
import {
  DirEvent,
  DirWatcher,
  EntryTimeoutError,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE,
  IN_Q_OVERFLOW,
  inotifyStats,
  isSocket,
  waitForEntry,
  WatchedDirGoneError,
} from '../../src/os';
import { waitFor } from '../helpers/proc';
import { runOsChild } from '../helpers/os-child';
import { useTmpRoot } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '../..');
const { root, freshDir } = useTmpRoot('vhp-os-inotify-');
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function watch(dir: string, opts?: ConstructorParameters<typeof DirWatcher>[2]): { w: DirWatcher; events: DirEvent[] } {
  const events: DirEvent[] = [];
  const w = new DirWatcher(dir, (ev) => events.push(ev), opts);
  cleanups.push(() => w.close());
  return { w, events };
}

async function listen(p: string): Promise<net.Server> {
  const srv = net.createServer((c) => c.end());
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(p, () => resolve());
  });
  return srv;
}

const find = (events: DirEvent[], type: string, name?: string) =>
  events.find((e) => e.type === type && (name === undefined || e.name === name));

describe('DirWatcher', () => {
  it('sees a unix socket being bound as a create event', async () => {
    const d = freshDir();
    const { events } = watch(d);
    await listen(path.join(d, 'vhu0'));
    const ev = await waitFor(() => find(events, 'create', 'vhu0'), 'create of vhu0', 2000);
    expect(ev).toMatchObject({ type: 'create', dir: d, name: 'vhu0', isDir: false, cookie: 0 });
    expect(ev.mask & IN_CREATE).toBe(IN_CREATE);
  });

  it('sees a rename into the directory as moved_to, paired with moved_from by cookie', async () => {
    const from = freshDir();
    const to = freshDir();
    const a = watch(from);
    const b = watch(to);
    fs.writeFileSync(path.join(from, 'sock'), '');
    fs.renameSync(path.join(from, 'sock'), path.join(to, 'sock'));
    const movedTo = await waitFor(() => find(b.events, 'moved_to', 'sock'), 'moved_to', 2000);
    const movedFrom = await waitFor(() => find(a.events, 'moved_from', 'sock'), 'moved_from', 2000);
    expect(movedTo.cookie).not.toBe(0);
    expect(movedFrom.cookie).toBe(movedTo.cookie);
    // The writer finishing is its own event: no polling for "is it complete".
    expect(find(a.events, 'close_write', 'sock')).toBeDefined();
  });

  it('reports deletes, directories, and the directory itself going away', async () => {
    const d = freshDir();
    const { w, events } = watch(d);
    fs.mkdirSync(path.join(d, 'sub'));
    fs.rmdirSync(path.join(d, 'sub'));
    await waitFor(() => find(events, 'delete', 'sub'), 'delete of sub', 2000);
    expect(find(events, 'create', 'sub')?.isDir).toBe(true);
    fs.rmdirSync(d);
    await waitFor(() => find(events, 'ignored'), 'ignored', 2000);
    expect(find(events, 'delete_self')).toBeDefined();
    expect(w.active).toBe(false);
  });

  it('delivers queue overflow instead of dropping it, and keeps working afterwards', async () => {
    const max = Number(fs.readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
    expect(max).toBeGreaterThan(0);
    expect(max, 'max_queued_events too large to overflow in a unit test').toBeLessThan(4_000_000);
    const d = freshDir();
    const { events } = watch(d);
    // The loop never yields, so the queue fills: each rename queues moved_from + moved_to.
    const names = [path.join(d, 'a'), path.join(d, 'b')];
    fs.writeFileSync(names[0], '');
    for (let i = 0; i < max / 2 + 100; i++) fs.renameSync(names[i % 2], names[(i + 1) % 2]);
    const ov = await waitFor(() => find(events, 'overflow'), 'overflow', 5000);
    expect(ov).toMatchObject({ name: '', dir: d });
    expect(ov.mask & IN_Q_OVERFLOW).toBe(IN_Q_OVERFLOW);
    fs.writeFileSync(path.join(d, 'after'), '');
    await waitFor(() => find(events, 'create', 'after'), 'create after overflow', 2000);
  });

  it('shares one watch descriptor between watchers of the same directory', () => {
    const d = freshDir();
    const base = inotifyStats();
    const a = watch(d);
    const b = watch(path.join(d, '.'));
    expect(inotifyStats()).toMatchObject({ watches: base.watches + 1, listeners: base.listeners + 2, refed: true });
    a.w.close();
    expect(b.w.active).toBe(true);
    b.w.unref();
    expect(inotifyStats().refed).toBe(base.refed);
    b.w.close();
    expect(inotifyStats()).toMatchObject({ watches: base.watches, listeners: base.listeners });
  });

  it('adds up the masks of watchers sharing a directory, and filters each one by its own', async () => {
    const d = freshDir();
    const creates = watch(d, { mask: IN_CREATE });
    const deletes = watch(d, { mask: IN_DELETE | IN_CLOSE_WRITE });
    fs.writeFileSync(path.join(d, 'f'), '');
    fs.unlinkSync(path.join(d, 'f'));
    await waitFor(() => find(deletes.events, 'delete', 'f'), 'delete seen by the second watcher', 2000);
    await waitFor(() => find(creates.events, 'create', 'f'), 'create seen by the first watcher', 2000);
    expect(creates.events.map((e) => e.type)).toEqual(['create']);
    expect(deletes.events.map((e) => e.type)).toEqual(['close_write', 'delete']);
    deletes.w.close();
    fs.writeFileSync(path.join(d, 'g'), '');
    await waitFor(() => find(creates.events, 'create', 'g'), 'create after the other watcher closed', 2000);
  });

  it('throws the Node-shaped inotify_add_watch error for a missing directory or a file', () => {
    const d = freshDir();
    expect(() => new DirWatcher(path.join(d, 'missing'), () => undefined)).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'inotify_add_watch', path: path.join(d, 'missing') }),
    );
    fs.writeFileSync(path.join(d, 'file'), '');
    expect(() => new DirWatcher(path.join(d, 'file'), () => undefined)).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }),
    );
  });
});

describe('waitForEntry', () => {
  it('resolves when a socket appears later', async () => {
    const d = freshDir();
    const t0 = performance.now();
    const p = waitForEntry(d, 'vhu1', { timeoutMs: 5000, predicate: isSocket });
    setTimeout(() => void listen(path.join(d, 'vhu1')), 50);
    const st = await p;
    expect(st.isSocket()).toBe(true);
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(inotifyStats().watches).toBe(0);
  });

  it('keeps waiting while the entry fails the predicate (a regular file is not a socket)', async () => {
    const d = freshDir();
    fs.writeFileSync(path.join(d, 'vhu2'), 'not a socket');
    let settled = false;
    const p = waitForEntry(d, 'vhu2', { timeoutMs: 5000, predicate: isSocket }).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    fs.unlinkSync(path.join(d, 'vhu2'));
    await listen(path.join(d, 'vhu2'));
    expect((await p).isSocket()).toBe(true);
  });

  it('times out with a typed ETIMEDOUT error naming the path and what it saw', async () => {
    const d = freshDir();
    fs.writeFileSync(path.join(d, 'late'), '');
    const err = await waitForEntry(d, 'late', { timeoutMs: 80, predicate: isSocket }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EntryTimeoutError);
    expect(err).toMatchObject({
      code: 'ETIMEDOUT',
      path: path.join(d, 'late'),
      timeoutMs: 80,
      lastSeen: 'regular file',
    });
    const missing = await waitForEntry(d, 'never', { timeoutMs: 30 }).catch((e: EntryTimeoutError) => e);
    expect(missing).toMatchObject({ code: 'ETIMEDOUT', lastSeen: 'missing' });
    expect((missing as Error).message).toContain(path.join(d, 'never'));
    expect(inotifyStats().watches).toBe(0);
  });

  it('does not miss an entry created between adding the watch and the first check', async () => {
    const d = freshDir();
    const st = await waitForEntry(d, 'racy', {
      timeoutMs: 2000,
      onWatching: () => {
        expect(inotifyStats().watches).toBe(1); // the watch is armed before anything is looked at
        fs.writeFileSync(path.join(d, 'racy'), '');
      },
    });
    expect(st.isFile()).toBe(true);
    // Already there before the call: resolved by the check alone.
    expect((await waitForEntry(d, 'racy', { timeoutMs: 2000 })).isFile()).toBe(true);
  });

  it('serves many concurrent waiters in one directory with one watch', async () => {
    const d = freshDir();
    const n = 300;
    const waits = Array.from({ length: n }, (_, i) => waitForEntry(d, `e${i}`, { timeoutMs: 10_000 }));
    expect(inotifyStats()).toMatchObject({ watches: 1, listeners: 1, refed: true });
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(d, `e${i}`), '');
    const all = await Promise.all(waits);
    expect(all).toHaveLength(n);
    expect(all.every((s) => s.isFile())).toBe(true);
    expect(inotifyStats()).toMatchObject({ watches: 0, listeners: 0, refed: false });
  });

  it('rejects when the directory cannot be watched or goes away, and on abort', async () => {
    const d = freshDir();
    await expect(waitForEntry(path.join(d, 'nope'), 'x', { timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'inotify_add_watch',
    });
    await expect(waitForEntry(d, '../x', { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(waitForEntry(d, 'x', { timeoutMs: NaN })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    const gone = waitForEntry(d, 'x', { timeoutMs: 5000 });
    fs.rmdirSync(d);
    await expect(gone).rejects.toBeInstanceOf(WatchedDirGoneError);
    const d2 = freshDir();
    const ac = new AbortController();
    const aborted = waitForEntry(d2, 'x', { timeoutMs: 5000, signal: ac.signal });
    ac.abort(new Error('plug cancelled'));
    await expect(aborted).rejects.toThrow('plug cancelled');
    expect(inotifyStats().watches).toBe(0);
  });
});

describe('raw inotify handle', () => {
  it('delivers a whole read batch in one call', async () => {
    const d = freshDir();
    const batches: RawInotifyEvent[][] = [];
    const raw = native().inotifyOpen((evs) => batches.push(evs));
    cleanups.push(() => raw.close());
    const wd = raw.addWatch(d, IN_CREATE);
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(d, `f${i}`), '');
    await waitFor(() => batches.length > 0, 'a batch', 2000);
    expect(batches[0]).toHaveLength(50);
    expect(batches[0][49]).toEqual({ wd, mask: IN_CREATE, cookie: 0, name: 'f49' });
    raw.rmWatch(wd);
    expect(() => raw.rmWatch(wd)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'inotify_rm_watch' }));
    raw.close();
    raw.close(); // idempotent
    expect(() => raw.addWatch(d, IN_CREATE)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

/** Runs a script in a child node over the transpiled os layer. */
const runChild = (script: string, waitMs: number) => runOsChild(root(), script, waitMs);

describe('process lifetime', () => {
  it('an unref’d watcher lets node exit; a ref’d one keeps it alive', async () => {
    const d = freshDir();
    const prelude = `const { DirWatcher, waitForEntry } = require('./src/os'); const { native } = require('./src/native');`;
    const raw = await runChild(
      `${prelude} const r = native().inotifyOpen(() => {}); r.addWatch(${JSON.stringify(d)}, 0x100); r.unref();`,
      5000,
    );
    expect(raw).toMatchObject({ code: 0, stderr: '' });
    const typed = await runChild(`${prelude} new DirWatcher(${JSON.stringify(d)}, () => {}).unref();`, 5000);
    expect(typed).toMatchObject({ code: 0, stderr: '' });
    const idle = await runChild(
      `${prelude} waitForEntry(${JSON.stringify(d)}, 'x', { timeoutMs: 60000, persistent: false });`,
      5000,
    );
    expect(idle).toMatchObject({ code: 0, stderr: '' });
    const held = await runChild(`${prelude} new DirWatcher(${JSON.stringify(d)}, () => {});`, 1500);
    expect(held.code).toBe('alive');
  });

  it('an exception thrown by an event listener surfaces as uncaughtException', async () => {
    const d = freshDir();
    const script =
      `const { DirWatcher } = require('./src/os');` +
      `process.on('uncaughtException', (e) => { console.log('caught:' + e.message); process.exit(3); });` +
      `new DirWatcher(${JSON.stringify(d)}, () => { throw new Error('listener failed'); });` +
      `require('fs').writeFileSync(${JSON.stringify(path.join(d, 'boom'))}, '');`;
    const r = await runChild(script, 5000);
    expect(r).toMatchObject({ code: 3, stdout: 'caught:listener failed\n' });
  });
});

/** inotify fds open in this process. */
function inotifyFds(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:inotify';
    } catch {
      return false; // the fd of the readdir itself is gone by now
    }
  }).length;
}

describe('environment cleanup', () => {
  it('closes a worker thread’s inotify fd when the worker is terminated', async () => {
    const d = freshDir();
    const before = inotifyFds();
    const addon = path.join(ROOT, 'build/Release/vhostplug.node');
    const worker = new Worker(
      `const { parentPort } = require('worker_threads');
       const r = require(${JSON.stringify(addon)}).inotifyOpen(() => {});
       r.addWatch(${JSON.stringify(d)}, 0x100);
       parentPort.postMessage('watching');`,
      { eval: true },
    );
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(inotifyFds()).toBe(before + 1);
    await worker.terminate();
    expect(inotifyFds()).toBe(before);
  });
});
