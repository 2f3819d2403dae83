/**
 * Owner, mode and SELinux label through one O_PATH descriptor (native/ownership.cc,
 * src/os/ownership.ts): symlinks refused, types checked, a socket's permissions final
 * before it appears in the destination directory, and the permissions really keep other
 * users out (connections made as other UIDs with setpriv).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  applyOwnership,
  ensureOwnedDir,
  isEmptyOwnership,
  labelXattr,
  moveSocketOwned,
  selinuxEnabled,
  seLabelOf,
  SELINUX_XATTR,
} from '../../src/os/ownership';
import { writeFileAtomic } from '../../src/os/atomic-file';
import { DirWatcher } from '../../src/os/inotify';
import { native } from '../../src/native';
import { describeIf, firstReason, needsBinaries, needsRoot } from '../helpers/skip';
import { useTmpRoot } from '../helpers/tmp';

const UID_A = 23401;
const UID_B = 23402;
const LABEL = 'system_u:object_r:container_file_t:s0:c1,c2';

/** Tries to connect to a unix socket as uid:gid (no supplementary groups); returns "ok" or the errno code. */
function connectAs(uid: number, gid: number, sock: string): string {
  const script = `const c=require('net').connect(${JSON.stringify(sock)});c.on('connect',()=>{process.stdout.write('ok');c.destroy()});c.on('error',e=>process.stdout.write(e.code))`;
  const r = spawnSync(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', script],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return r.stdout.trim() || `exit ${r.status}: ${r.stderr}`;
}

describeIf(firstReason(needsRoot(), needsBinaries('setpriv')))('ownership primitives (as root)', () => {
  const tmp = useTmpRoot('vhp-own-');
  const servers: net.Server[] = [];

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function listen(p: string): Promise<void> {
    const srv = net.createServer((c) => c.end());
    servers.push(srv);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(p, resolve);
    });
  }

  /** A directory every test user can traverse (the temp root is root's 0700). */
  function openDir(): string {
    fs.chmodSync(tmp.root(), 0o755);
    const d = tmp.freshDir();
    fs.chmodSync(d, 0o755);
    return d;
  }

  it('sets owner and mode of a socket; only that user (and root) can connect', async () => {
    const d = openDir();
    const sock = path.join(d, 'vhu0');
    await listen(sock);
    const st = applyOwnership(sock, 'socket', { uid: UID_A, gid: UID_A, mode: 0o660 });
    expect(st.uid).toBe(UID_A);
    expect(st.gid).toBe(UID_A);
    expect(st.mode & 0o7777).toBe(0o660);
    expect(st.labelled).toBe(false);
    expect(fs.lstatSync(sock).ino).toBe(st.ino);
    expect(connectAs(UID_A, UID_A, sock)).toBe('ok');
    expect(connectAs(UID_B, UID_B, sock)).toBe('EACCES');
  });

  it('refuses a symlink (ELOOP, a Node-style error) and changes nothing behind it', () => {
    const d = tmp.freshDir();
    const target = path.join(d, 'target');
    fs.writeFileSync(target, 'x', { mode: 0o600 });
    fs.symlinkSync(target, path.join(d, 'link'));
    let err: NodeJS.ErrnoException | undefined;
    try {
      applyOwnership(path.join(d, 'link'), undefined, { uid: UID_A, mode: 0o666 });
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err).toMatchObject({ code: 'ELOOP', errno: -40, syscall: 'open', path: path.join(d, 'link') });
    const st = fs.statSync(target);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('checks the type before changing anything', () => {
    const d = tmp.freshDir();
    const f = path.join(d, 'file');
    fs.writeFileSync(f, 'x', { mode: 0o600 });
    expect(() => applyOwnership(f, 'socket', { mode: 0o666 })).toThrow(
      expect.objectContaining({ code: 'ENOTSOCK', syscall: 'fstat' }),
    );
    expect(() => applyOwnership(f, 'directory', { mode: 0o666 })).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => applyOwnership(d, 'file', { mode: 0o666 })).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    expect(() => applyOwnership(path.join(d, 'missing'), 'file', { mode: 0o666 })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open' }),
    );
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(() => native().applyOwnership(f, { mode: 0o10000 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => native().applyOwnership(`${f}\0x`, {})).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });

  it('keeps setgid on a directory and re-applies the asked bits after chown', () => {
    const d = path.join(tmp.freshDir(), 'pod');
    const r = ensureOwnedDir(d, { uid: UID_A, gid: UID_B, mode: 0o2770 });
    expect(r.created).toBe(true);
    const st = fs.statSync(d);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([UID_A, UID_B, 0o2770]);
    // Existing: taken as it is, owner and mode re-applied.
    fs.chmodSync(d, 0o755);
    expect(ensureOwnedDir(d, { uid: UID_A, gid: UID_B, mode: 0o750 }).created).toBe(false);
    expect(fs.statSync(d).mode & 0o7777).toBe(0o750);
  });

  it("ensureOwnedDir refuses a symlink or a file in the directory's place", () => {
    const parent = tmp.freshDir();
    const elsewhere = tmp.freshDir();
    fs.symlinkSync(elsewhere, path.join(parent, 'pod'));
    expect(() => ensureOwnedDir(path.join(parent, 'pod'), { uid: UID_A, mode: 0o700 })).toThrow(
      expect.objectContaining({ code: 'ELOOP' }),
    );
    expect(fs.statSync(elsewhere).uid).toBe(0);
    fs.writeFileSync(path.join(parent, 'pod2'), '');
    expect(() => ensureOwnedDir(path.join(parent, 'pod2'), { mode: 0o700 })).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }),
    );
  });

  it('moveSocketOwned: the socket appears in the destination with its final owner and mode (seen at the inotify event)', async () => {
    const src = tmp.freshDir(); // root's, like ovs_vhu_path
    const dst = openDir();
    const sock = path.join(src, 'vhu1');
    await listen(sock);
    fs.chmodSync(sock, 0o777); // as wide as it gets before the move
    const seen: { mode: number; uid: number }[] = [];
    const w = new DirWatcher(dst, (ev) => {
      if (ev.name !== 'vhu1') return;
      const st = fs.lstatSync(path.join(dst, 'vhu1'));
      seen.push({ mode: st.mode & 0o777, uid: st.uid });
    });
    try {
      const moved = moveSocketOwned(sock, path.join(dst, 'vhu1'), { uid: UID_A, gid: UID_A, mode: 0o600 });
      expect(moved.owned?.ino).toBe(moved.ino);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      w.close();
    }
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual({ mode: 0o600, uid: UID_A });
    expect(fs.existsSync(sock)).toBe(false);
    // Same listener behind it: the owner connects, anyone else is refused.
    expect(connectAs(UID_A, UID_A, path.join(dst, 'vhu1'))).toBe('ok');
    expect(connectAs(UID_B, UID_A, path.join(dst, 'vhu1'))).toBe('EACCES');
  });

  it('SELinux label: written where SELinux is enabled, a no-op elsewhere', () => {
    const d = tmp.freshDir();
    const f = path.join(d, 'f');
    fs.writeFileSync(f, '');
    // This machine's SELinux state decides the default.
    const here = selinuxEnabled();
    expect(applyOwnership(f, 'file', { seLabel: LABEL }).labelled).toBe(here);
    // Disabled: no attribute is written.
    const g = path.join(d, 'g');
    fs.writeFileSync(g, '');
    expect(applyOwnership(g, 'file', { seLabel: LABEL }, { selinux: false }).labelled).toBe(false);
    if (!here) expect(seLabelOf(g)).toBeNull();
    expect(labelXattr({ seLabel: LABEL }, { selinux: false })).toBeUndefined();
    // Enabled (forced: ext4/tmpfs store security.* attributes without an LSM): the attribute is the label.
    expect(applyOwnership(g, 'file', { seLabel: LABEL }, { selinux: true }).labelled).toBe(true);
    expect(seLabelOf(g)).toBe(LABEL);
    expect(labelXattr({ seLabel: LABEL }, { selinux: true })).toEqual([SELINUX_XATTR, LABEL]);
    expect(selinuxEnabled(path.join(d, 'no-selinuxfs'))).toBe(false);
  });

  it('writeFileAtomic sets the xattr, owner and mode on the new file before it replaces the target', async () => {
    const d = tmp.freshDir();
    const f = path.join(d, 'interfaces.json');
    await writeFileAtomic(f, '{}', {
      mode: 0o640,
      uid: UID_A,
      gid: UID_B,
      xattr: [SELINUX_XATTR, LABEL],
      fsync: false,
    });
    const st = fs.statSync(f);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([UID_A, UID_B, 0o640]);
    expect(seLabelOf(f)).toBe(LABEL);
  });

  it('isEmptyOwnership', () => {
    expect(isEmptyOwnership(undefined)).toBe(true);
    expect(isEmptyOwnership({})).toBe(true);
    expect(isEmptyOwnership({ mode: 0o600 })).toBe(false);
  });
});
