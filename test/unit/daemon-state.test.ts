/**
 * Durable per-attachment state: atomic JSON files, unambiguous names, mode 0600 in a 0700
 * dir, corrupt/foreign files reported not trusted, stray temp files listed for cleanup.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateStore, stateFileName, recordProblem, type AttachmentRecord } from '../../src/daemon/state';
import { isLive } from '../../src/daemon/reconciler';

function record(containerId: string, ifname: string, extra: Partial<AttachmentRecord> = {}): AttachmentRecord {
  return {
    version: 1,
    containerId,
    ifname,
    phase: 'adding',
    kind: 'vhostuser',
    mode: 'client',
    network: 'dpdk-net',
    bridge: 'br-int',
    portId: '00000000-0000-5000-8000-000000000000',
    portName: 'vhu00000000-00',
    mac: '02:00:00:00:00:01',
    netconf: { cniVersion: '1.1.0', name: 'dpdk-net', type: 'vhostplug' },
    cniEnv: { CNI_CONTAINERID: containerId, CNI_IFNAME: ifname, CNI_PATH: '/usr/lib/cni' },
    ipam: false,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...extra,
  };
}

describe('StateStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-state-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the directory 0700 and writes records 0600, read back equal', async () => {
    const st = await StateStore.open(path.join(dir, 'state'), { fsync: false });
    expect(fs.statSync(st.dir).mode & 0o777).toBe(0o700);
    const rec = record('abc', 'net1');
    await st.write(rec);
    const file = st.pathOf('abc', 'net1');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(await st.read('abc', 'net1')).toEqual(rec);
    rec.phase = 'added';
    await st.write(rec);
    expect((await st.read('abc', 'net1'))?.phase).toBe('added');
    expect(fs.readdirSync(st.dir)).toEqual(['abc:net1.json']);
    expect(await st.remove('abc', 'net1')).toBe(true);
    expect(await st.remove('abc', 'net1')).toBe(false);
    expect(await st.read('abc', 'net1')).toBeUndefined();
  });

  it('tightens an existing group/world-accessible directory', async () => {
    const p = path.join(dir, 'loose');
    fs.mkdirSync(p, { mode: 0o755 });
    fs.chmodSync(p, 0o755);
    await StateStore.open(p);
    expect(fs.statSync(p).mode & 0o777).toBe(0o700);
  });

  it('names are unambiguous, refuse bad ids and fit NAME_MAX for the longest ids', () => {
    expect(stateFileName('a-b', 'c')).not.toBe(stateFileName('a', 'b-c'));
    expect(() => stateFileName('../x', 'eth0')).toThrow(TypeError);
    expect(() => stateFileName('abc', '../x')).toThrow(TypeError);
    const long = stateFileName('a'.repeat(239), 'eth0123456789ab');
    expect(long).toMatch(/^h-[0-9a-f]{40}\.json$/);
    expect(long).toBe(stateFileName('a'.repeat(239), 'eth0123456789ab'));
  });

  it('a long id round-trips through its hashed name', async () => {
    const st = await StateStore.open(dir, { fsync: false });
    const id = 'b'.repeat(239);
    await st.write(record(id, 'eth0'));
    expect((await st.read(id, 'eth0'))?.containerId).toBe(id);
    expect((await st.list()).records.map((r) => r.containerId)).toEqual([id]);
  });

  it('corrupt, foreign and misnamed files are reported, never trusted; temp files are listed', async () => {
    const st = await StateStore.open(dir, { fsync: false });
    await st.write(record('good', 'net1'));
    fs.writeFileSync(path.join(dir, 'torn:net1.json'), '{"version":1,"contai');
    fs.writeFileSync(path.join(dir, 'future:net1.json'), JSON.stringify({ ...record('future', 'net1'), version: 2 }));
    fs.writeFileSync(path.join(dir, 'other:net1.json'), JSON.stringify(record('elsewhere', 'net1')));
    fs.writeFileSync(path.join(dir, '.good:net1.json.tmp-1-abcdef'), 'partial');
    const bad: string[] = [];
    expect(await st.read('torn', 'net1', (b) => bad.push(b.reason))).toBeUndefined();
    expect(await st.read('other', 'net1', (b) => bad.push(b.reason))).toBeUndefined();
    expect(bad).toHaveLength(2);
    const listed = await st.list();
    expect(listed.records.map((r) => r.containerId)).toEqual(['good']);
    expect(listed.bad.map((b) => path.basename(b.file)).sort()).toEqual([
      'future:net1.json',
      'other:net1.json',
      'torn:net1.json',
    ]);
    expect(listed.temps.map((t) => path.basename(t))).toEqual(['.good:net1.json.tmp-1-abcdef']);
  });

  it('recordProblem checks the shape', () => {
    expect(recordProblem(record('a', 'b'))).toBeUndefined();
    expect(recordProblem(null)).toBe('not an object');
    expect(recordProblem({ ...record('a', 'b'), phase: 'done' })).toBe('bad phase');
    expect(recordProblem({ ...record('a', 'b'), containerId: '../x' })).toBe('bad containerId');
    expect(recordProblem({ ...record('a', 'b'), kind: 'sriov' })).toBe('bad kind');
  });

  it('liveness: added and its netns exists; adding is never live', () => {
    const ns = path.join(dir, 'ns');
    fs.writeFileSync(ns, '');
    expect(isLive(record('a', 'b', { phase: 'added', netns: ns }))).toBe(true);
    expect(isLive(record('a', 'b', { phase: 'adding', netns: ns }))).toBe(false);
    expect(isLive(record('a', 'b', { phase: 'added', netns: path.join(dir, 'gone') }))).toBe(false);
    expect(isLive(record('a', 'b', { phase: 'added' }))).toBe(true);
    // An invisible netns directory proves nothing.
    expect(isLive(record('a', 'b', { phase: 'added', netns: path.join(dir, 'no-such-dir', 'ns') }))).toBe(true);
  });
});
