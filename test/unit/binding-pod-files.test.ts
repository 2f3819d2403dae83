/**
 * The files a pod is handed (src/binding/pod-files.ts): places in both layouts, the pod
 * directory created with its owner and mode and removed with its last interface (what the
 * pod left in it unlinked, never followed), and interfaces.json written atomically with
 * the files' ownership.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { PodFiles, DEFAULT_POD_MOUNT_PATH } from '../../src/binding/pod-files';
import { parsePodIndex, type PodIndexEntry } from '../../src/binding/pod-index';
import { ValidationError } from '../../src/core/validate';
import { describeIf, needsRoot } from '../helpers/skip';
import { useTmpRoot } from '../helpers/tmp';

const UID = 'c0ffee00-1111-4222-8333-444455556666';
const VIF = 'vhu11111111-11';

function entry(over: Partial<PodIndexEntry> = {}): PodIndexEntry {
  return {
    ifname: 'net1',
    vhostname: VIF,
    socket: VIF,
    mode: 'client',
    mac: '02:00:00:00:00:01',
    mtu: 1500,
    generation: 1,
    config_file: 'ctr-net1',
    container_id: 'ctr',
    ...over,
  };
}

describeIf(needsRoot())('pod files', () => {
  const tmp = useTmpRoot('vhp-podfiles-');

  it('places: per-pod under <mount>/<uid>, flat in <mount>; the pod view at the pod mount path', () => {
    const mount = tmp.freshDir();
    const f = new PodFiles({ mountPoint: mount, fsync: false });
    const p = f.place({ layout: 'per-pod', podUid: UID, vifName: VIF, containerId: 'ctr', ifname: 'net1' });
    expect(p).toMatchObject({
      dir: path.join(mount, UID),
      socketPath: path.join(mount, UID, VIF),
      podSocketPath: `${DEFAULT_POD_MOUNT_PATH}/${VIF}`,
      configPath: path.join(mount, UID, 'ctr-net1'),
      indexPath: path.join(mount, UID, 'interfaces.json'),
    });
    const flat = f.place({ layout: 'flat', podUid: UID, vifName: VIF, containerId: 'ctr', ifname: 'net1' });
    expect(flat).toMatchObject({
      dir: mount,
      socketPath: path.join(mount, VIF),
      podSocketPath: path.join(mount, VIF),
      indexPath: path.join(mount, `interfaces-${UID}.json`),
    });
    expect(f.place({ layout: 'flat', vifName: VIF, containerId: 'ctr', ifname: 'net1' }).indexPath).toBeUndefined();
    expect(
      f.place({ layout: 'per-pod', podUid: UID, vifName: VIF, containerId: 'c', ifname: 'n', podMountPath: '/pod' })
        .podSocketPath,
    ).toBe(`/pod/${VIF}`);
    // The per-pod layout without a UID, or with a bad one: refused before anything exists.
    expect(() => f.place({ layout: 'per-pod', vifName: VIF, containerId: 'ctr', ifname: 'net1' })).toThrow(
      /needs the pod UID/,
    );
    expect(() =>
      f.place({ layout: 'per-pod', podUid: '../x', vifName: VIF, containerId: 'ctr', ifname: 'net1' }),
    ).toThrow(ValidationError);
    // A mount point too long for <mount>/<uid>/<port> in sun_path.
    const long = new PodFiles({ mountPoint: `/${'m'.repeat(60)}` });
    expect(() =>
      long.place({ layout: 'per-pod', podUid: UID, vifName: VIF, containerId: 'ctr', ifname: 'net1' }),
    ).toThrow(/a unix socket path holds at most 107/);
    expect(fs.readdirSync(mount)).toEqual([]);
  });

  it('the pod directory: created with owner and mode, the index owned like the files, removed with what the pod left', async () => {
    const mount = tmp.freshDir();
    const outside = tmp.freshDir();
    fs.writeFileSync(path.join(outside, 'precious'), 'keep');
    const f = new PodFiles({ mountPoint: mount, fsync: false });
    const p = f.place({
      layout: 'per-pod',
      podUid: UID,
      vifName: VIF,
      containerId: 'ctr',
      ifname: 'net1',
      access: { uid: 23401, gid: 23402 },
    });
    expect(f.ensureDir(p)).toEqual({ created: true });
    const st = fs.statSync(p.dir);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([23401, 23402, 0o770]);
    expect(f.ensureDir(p)).toEqual({ created: false });
    await f.writeIndex(p, { uid: UID, namespace: 'default', name: 'app' }, [entry()]);
    const ist = fs.statSync(p.indexPath!);
    expect([ist.uid, ist.gid, ist.mode & 0o777]).toEqual([23401, 23402, 0o640]);
    expect(parsePodIndex(fs.readFileSync(p.indexPath!, 'utf8')).interfaces).toEqual([entry()]);
    // What a pod may leave: its files, a symlink out of its directory, a socket.
    fs.writeFileSync(path.join(p.dir, 'junk'), 'x');
    fs.symlinkSync(path.join(outside, 'precious'), path.join(p.dir, 'link'));
    await f.writeIndex(p, { uid: UID }, []);
    expect(fs.existsSync(p.indexPath!)).toBe(false);
    expect(await f.removeDir(p)).toBe(true);
    expect(fs.existsSync(p.dir)).toBe(false);
    expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('keep');
    expect(await f.removeDir(p)).toBe(true); // already gone
  });

  it("a subdirectory the pod made keeps the directory (no recursion into pod-owned trees); a symlink in the directory's place is refused", async () => {
    const mount = tmp.freshDir();
    const f = new PodFiles({ mountPoint: mount, fsync: false });
    const p = f.place({ layout: 'per-pod', podUid: UID, vifName: VIF, containerId: 'ctr', ifname: 'net1' });
    f.ensureDir(p);
    expect(fs.statSync(p.dir).mode & 0o777).toBe(0o755);
    fs.mkdirSync(path.join(p.dir, 'sub'));
    fs.writeFileSync(path.join(p.dir, 'sub', 'f'), '');
    fs.writeFileSync(path.join(p.dir, 'top'), '');
    expect(await f.removeDir(p)).toBe(false);
    expect(fs.readdirSync(p.dir)).toEqual(['sub']);
    fs.rmSync(p.dir, { recursive: true });
    const elsewhere = tmp.freshDir();
    fs.symlinkSync(elsewhere, p.dir);
    expect(() => f.ensureDir(p)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
  });

  it('flat layout: no directory of its own; the index is interfaces-<uid>.json in the shared one', async () => {
    const mount = tmp.freshDir();
    const f = new PodFiles({ mountPoint: mount, fsync: false });
    const p = f.place({ layout: 'flat', podUid: UID, vifName: VIF, containerId: 'ctr', ifname: 'net1' });
    expect(f.ensureDir(p)).toEqual({ created: false });
    await f.writeIndex(p, { uid: UID }, [entry()]);
    expect(fs.readdirSync(mount)).toEqual([`interfaces-${UID}.json`]);
    expect(fs.statSync(path.join(mount, `interfaces-${UID}.json`)).mode & 0o777).toBe(0o644);
    expect(await f.removeDir(p)).toBe(false);
    expect(fs.existsSync(mount)).toBe(true);
  });
});
