import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/native';
import {
  checkSameMount,
  CrossDeviceError,
  devNumbers,
  moveSocket,
  mountOf,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  NotASocketError,
  parseMountInfo,
  renameNoReplace,
  sameMount,
} from '../../src/os';
import { describeIf, needsRoot } from '../helpers/skip';

let sandbox: string;
const servers: net.Server[] = [];
const mounts: string[] = [];

beforeAll(() => {
  sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-os-rename-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

afterAll(() => {
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m]);
  fs.rmSync(sandbox, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = path.join(sandbox, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** A listening unix socket that answers every connection with "hello". */
async function listen(p: string): Promise<net.Server> {
  const srv = net.createServer((c) => c.end('hello'));
  servers.push(srv);
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(p, () => resolve());
  });
  return srv;
}

/** Connects to a unix socket and reads what the server sends. */
function greet(p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(p);
    let got = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

function mount(args: string[], target: string): void {
  execFileSync('mount', [...args, target]);
  mounts.push(target);
}

describe('moveSocket', () => {
  it('moves a listening unix socket with rename(2): same inode, still connectable', async () => {
    const src = path.join(dir('ovs1'), 'vhu1');
    const dst = path.join(dir('mnt1'), 'vhu1');
    await listen(src);
    const before = fs.lstatSync(src);
    const moved = moveSocket(src, dst);
    expect(moved).toMatchObject({ path: dst, ino: before.ino, dev: before.dev });
    expect(fs.existsSync(src)).toBe(false);
    const after = fs.lstatSync(dst);
    expect(after.isSocket()).toBe(true);
    expect(after.ino).toBe(before.ino);
    expect(await greet(dst)).toBe('hello');
  });

  it('never replaces an existing destination unless asked (RENAME_NOREPLACE)', async () => {
    const src = path.join(dir('ovs2'), 'vhu2');
    const dst = path.join(dir('mnt2'), 'vhu2');
    await listen(src);
    fs.writeFileSync(dst, 'keep me');
    let err: unknown;
    try {
      moveSocket(src, dst);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'EEXIST',
      errno: -os.constants.errno.EEXIST,
      syscall: 'rename',
      path: src,
      dest: dst,
    });
    expect(fs.readFileSync(dst, 'utf8')).toBe('keep me');
    expect(fs.lstatSync(src).isSocket()).toBe(true);

    moveSocket(src, dst, { replace: true });
    expect(fs.lstatSync(dst).isSocket()).toBe(true);
    expect(await greet(dst)).toBe('hello');
  });

  it('refuses anything but a socket, without following symlinks', async () => {
    const d = dir('notsock');
    const file = path.join(d, 'file');
    fs.writeFileSync(file, 'x');
    expect(() => moveSocket(file, path.join(d, 'moved'))).toThrow(NotASocketError);
    try {
      moveSocket(file, path.join(d, 'moved'));
    } catch (e) {
      expect(e).toMatchObject({ code: 'ENOTSOCK', path: file, actualType: 'regular file' });
      expect((e as Error).message).toContain(file);
    }
    expect(() => moveSocket(d, path.join(sandbox, 'moved-dir'))).toThrow(/is a directory, not a unix socket/);

    const sock = path.join(d, 'real.sock');
    await listen(sock);
    const link = path.join(d, 'link.sock');
    fs.symlinkSync(sock, link);
    expect(() => moveSocket(link, path.join(d, 'moved-link'))).toThrow(/is a symbolic link, not a unix socket/);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(path.join(d, 'moved'))).toBe(false);

    expect(() => moveSocket(path.join(d, 'missing'), path.join(d, 'x'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'statx', path: path.join(d, 'missing') }),
    );
  });
});

describe('renameNoReplace and sameMount', () => {
  it('renames plain files and reports EEXIST for an existing destination', () => {
    const d = dir('plain');
    fs.writeFileSync(path.join(d, 'a'), 'a');
    fs.writeFileSync(path.join(d, 'b'), 'b');
    renameNoReplace(path.join(d, 'a'), path.join(d, 'c'));
    expect(fs.readFileSync(path.join(d, 'c'), 'utf8')).toBe('a');
    expect(() => renameNoReplace(path.join(d, 'c'), path.join(d, 'b'))).toThrow(/^EEXIST: .*rename '.*\/c' -> '.*\/b'/);
    expect(fs.readFileSync(path.join(d, 'b'), 'utf8')).toBe('b');
  });

  it('exposes RENAME_EXCHANGE and refuses unknown or contradictory flags', () => {
    const d = dir('exchange');
    fs.writeFileSync(path.join(d, 'a'), 'a');
    fs.writeFileSync(path.join(d, 'b'), 'b');
    native().rename(path.join(d, 'a'), path.join(d, 'b'), RENAME_EXCHANGE);
    expect([fs.readFileSync(path.join(d, 'a'), 'utf8'), fs.readFileSync(path.join(d, 'b'), 'utf8')]).toEqual([
      'b',
      'a',
    ]);
    for (const flags of [RENAME_NOREPLACE | RENAME_EXCHANGE, 8]) {
      expect(() => native().rename(path.join(d, 'a'), path.join(d, 'c'), flags)).toThrow(
        expect.objectContaining({ code: 'EINVAL', syscall: 'rename' }),
      );
    }
    expect(() => native().rename('a\0b', path.join(d, 'c'), 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(fs.existsSync(path.join(d, 'c'))).toBe(false);
  });

  it('sees two directories of one mount as the same mount', () => {
    expect(sameMount(dir('same-a'), dir('same-b'))).toBe(true);
    const check = checkSameMount(dir('same-a'), dir('same-b'), ['mount_point', 'ovs_vhu_path']);
    expect(check.same).toBe(true);
    expect(check.a.mntId).toBe(check.b.mntId);
  });
});

describeIf(needsRoot())('across mounts (mounts a tmpfs and a bind mount)', () => {
  it('turns EXDEV into a CrossDeviceError naming both paths and the fix; the socket stays usable', async () => {
    const ovs = dir('exdev-ovs');
    const mnt = dir('exdev-tmpfs');
    mount(['-t', 'tmpfs', '-o', 'size=1m', 'vhp-test-tmpfs'], mnt);
    const src = path.join(ovs, 'vhu3');
    const dst = path.join(mnt, 'vhu3');
    await listen(src);
    let err: unknown;
    try {
      moveSocket(src, dst);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrossDeviceError);
    const x = err as CrossDeviceError;
    expect(x).toMatchObject({
      code: 'EXDEV',
      errno: -os.constants.errno.EXDEV,
      syscall: 'rename',
      path: src,
      dest: dst,
    });
    expect(x.message).toContain(`'${src}'`);
    expect(x.message).toContain(`'${dst}'`);
    expect(x.message).toContain('[vhostuser] mount_point and ovs_vhu_path on the same mount');
    expect(x.message).toContain("tmpfs 'vhp-test-tmpfs'");
    expect(x.destMount?.mount?.mountPoint).toBe(mnt);
    // Nothing lost: the socket is where OVS put it, and no dead copy appeared.
    expect(fs.lstatSync(src).isSocket()).toBe(true);
    expect(fs.existsSync(dst)).toBe(false);
    expect(await greet(src)).toBe('hello');

    expect(sameMount(ovs, mnt)).toBe(false);
    const check = checkSameMount(mnt, ovs, ['mount_point', 'ovs_vhu_path']);
    expect(check.same).toBe(false);
    expect(check.message).toMatch(/^cross-mount setup detected: mount_point \(.*\) is on tmpfs 'vhp-test-tmpfs'/);
  });

  it('tells a bind mount apart although st_dev is equal (mount ids)', async () => {
    const base = dir('bind-src');
    const view = dir('bind-view');
    mount(['--bind', base], view);
    const a = fs.lstatSync(base);
    const b = fs.lstatSync(view);
    expect(a.dev).toBe(b.dev); // st_dev cannot see it...
    expect(sameMount(base, view)).toBe(false); // ...the mount id can
    expect(mountOf(view).mount?.root).toBe(base);

    const src = path.join(dir('bind-ovs'), 'vhu4');
    await listen(src);
    expect(() => moveSocket(src, path.join(view, 'vhu4'))).toThrow(CrossDeviceError);
    expect(() => moveSocket(src, path.join(view, 'vhu4'))).toThrow(/a bind mount of/);
    expect(fs.lstatSync(src).isSocket()).toBe(true);
  });
});

describe('mountinfo parsing', () => {
  it('parses optional fields and octal escapes', () => {
    const text = [
      '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
      '90 27 0:52 /data /srv/with\\040space rw,nosuid master:3 shared:9 - tmpfs none rw,size=1024k',
      'garbage line',
      '',
    ].join('\n');
    const entries = parseMountInfo(text);
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({
      mntId: 27,
      parentId: 1,
      devNumbers: '254:0',
      mountPoint: '/',
      fsType: 'ext4',
      source: '/dev/vda1',
    });
    expect(entries[1]).toMatchObject({
      mntId: 90,
      root: '/data',
      mountPoint: '/srv/with space',
      fsType: 'tmpfs',
      source: 'none',
      superOptions: 'rw,size=1024k',
    });
  });

  it('splits dev_t like glibc and finds the mount of a real path', () => {
    expect(devNumbers(65024)).toBe('254:0');
    // makedev(0x1003, 0x12345): both numbers need the high parts of the 64-bit encoding.
    expect(devNumbers(0x1000_1230_0345)).toBe(`${0x1003}:${0x12345}`);
    const m = mountOf(sandbox);
    expect(m.mntId).toBeGreaterThan(0);
    expect(m.mount).toBeDefined();
    expect(sandbox.startsWith(m.mount!.mountPoint === '/' ? '/' : m.mount!.mountPoint)).toBe(true);
    expect(devNumbers(m.dev)).toBe(m.mount!.devNumbers);
  });
});
