import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onMemoryFs, openNewFile, unlinkIfExists, UnsafeTargetError, writeFileAtomic } from '../../src/os';
import { itIf, needsRoot } from '../helpers/skip';
import { useTmpRoot } from '../helpers/tmp';

const { freshDir } = useTmpRoot('vhp-os-atomic-');

const CONFIG = JSON.stringify({ vhostname: 'vhu12345678-9a', vhostmac: 'fa:16:3e:00:00:01', mode: 'server' });

describe('writeFileAtomic', () => {
  it('writes the content with the asked mode whatever the umask, fsyncs, and leaves no temp file', async () => {
    const d = freshDir();
    const target = path.join(d, 'c0ffee-eth0');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(target, CONFIG, { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(target, 'utf8')).toBe(CONFIG);
    expect(fs.statSync(target).mode & 0o7777).toBe(0o644);
    expect(fs.readdirSync(d)).toEqual(['c0ffee-eth0']);
  });

  it('replaces an existing file by rename: a reader holding the old one keeps the old content', async () => {
    const d = freshDir();
    const target = path.join(d, 'cfg');
    await writeFileAtomic(target, 'generation 1', { mode: 0o600 });
    const before = fs.statSync(target);
    const fd = fs.openSync(target, 'r');
    try {
      await writeFileAtomic(target, 'generation 2', { mode: 0o640 });
      expect(fs.readFileSync(fd, 'utf8')).toBe('generation 1');
    } finally {
      fs.closeSync(fd);
    }
    const after = fs.statSync(target);
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o640);
    expect(fs.readFileSync(target, 'utf8')).toBe('generation 2');
    expect(fs.readdirSync(d)).toEqual(['cfg']);
  });

  it('refuses a symlink target without following it', async () => {
    const d = freshDir();
    const outside = path.join(freshDir(), 'victim');
    fs.writeFileSync(outside, 'precious');
    const target = path.join(d, 'cfg');
    fs.symlinkSync(outside, target);
    const err = await writeFileAtomic(target, CONFIG).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeTargetError);
    expect(err).toMatchObject({ code: 'ELOOP', errno: -os.constants.errno.ELOOP, path: target });
    expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    expect(fs.lstatSync(target).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(d)).toEqual(['cfg']);

    // A dangling symlink too: following it would create a file outside the directory.
    const dangling = path.join(d, 'dangling');
    fs.symlinkSync(path.join(path.dirname(outside), 'created-outside'), dangling);
    await expect(writeFileAtomic(dangling, CONFIG)).rejects.toMatchObject({ code: 'ELOOP' });
    expect(fs.existsSync(path.join(path.dirname(outside), 'created-outside'))).toBe(false);
  });

  it('refuses a directory or a socket-like target', async () => {
    const d = freshDir();
    fs.mkdirSync(path.join(d, 'dir'));
    await expect(writeFileAtomic(path.join(d, 'dir'), CONFIG)).rejects.toMatchObject({
      code: 'EISDIR',
      path: path.join(d, 'dir'),
    });
    expect(fs.statSync(path.join(d, 'dir')).isDirectory()).toBe(true);
    await expect(writeFileAtomic(path.join(d, 'missing-dir', 'cfg'), CONFIG)).rejects.toMatchObject({ code: 'ENOENT' });
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path.join(d, 'vhu0'), () => r()));
    try {
      await expect(writeFileAtomic(path.join(d, 'vhu0'), CONFIG)).rejects.toThrow(
        /refusing to replace .*vhu0': it is a unix socket/,
      );
      expect(fs.lstatSync(path.join(d, 'vhu0')).isSocket()).toBe(true);
      expect(fs.readdirSync(d).sort()).toEqual(['dir', 'vhu0']);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it('never follows a symlink planted at the temp file name', async () => {
    const d = freshDir();
    const outside = path.join(freshDir(), 'created-outside');
    const planted = path.join(d, '.cfg.tmp-planted');
    fs.symlinkSync(outside, planted);
    expect(() => openNewFile(planted)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(fs.existsSync(outside)).toBe(false);
    fs.closeSync(openNewFile(path.join(d, '.cfg.tmp-fresh'), 0o600));
    expect(fs.statSync(path.join(d, '.cfg.tmp-fresh')).isFile()).toBe(true);
  });

  it('removes the temp file and leaves the target alone when a step fails', async () => {
    const d = freshDir();
    const target = path.join(d, 'cfg');
    fs.writeFileSync(target, 'old');
    await expect(writeFileAtomic(target, 'new', { uid: 2 ** 33 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(fs.readFileSync(target, 'utf8')).toBe('old');
    expect(fs.readdirSync(d)).toEqual(['cfg']);
  });

  itIf(needsRoot())('sets owner and group (fchown)', async () => {
    const d = freshDir();
    const target = path.join(d, 'cfg');
    await writeFileAtomic(target, CONFIG, { uid: 4321, gid: 8765, mode: 0o604 });
    const st = fs.statSync(target);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([4321, 8765, 0o604]);
  });
});

describe('unlinkIfExists', () => {
  it('treats ENOENT as success, removes files and sockets, and a symlink only as a link', async () => {
    const d = freshDir();
    expect(await unlinkIfExists(path.join(d, 'missing'))).toBe(false);
    fs.writeFileSync(path.join(d, 'file'), '');
    expect(await unlinkIfExists(path.join(d, 'file'))).toBe(true);
    expect(fs.existsSync(path.join(d, 'file'))).toBe(false);

    const outside = path.join(freshDir(), 'target');
    fs.writeFileSync(outside, 'keep');
    fs.symlinkSync(outside, path.join(d, 'link'));
    expect(await unlinkIfExists(path.join(d, 'link'))).toBe(true);
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep');
  });

  it('never removes a directory', async () => {
    const d = freshDir();
    fs.mkdirSync(path.join(d, 'sub'));
    await expect(unlinkIfExists(path.join(d, 'sub'))).rejects.toMatchObject({ code: 'EISDIR', syscall: 'unlink' });
    expect(fs.statSync(path.join(d, 'sub')).isDirectory()).toBe(true);
  });
});

describe('onMemoryFs (fsync skipped where it flushes nothing)', () => {
  it('tells tmpfs from a disk filesystem by statfs, and a missing dir is "not memory"', () => {
    const fsType = (d: string) => Number(fs.statfsSync(d).type);
    if (fs.existsSync('/dev/shm')) expect(onMemoryFs('/dev/shm')).toBe(fsType('/dev/shm') === 0x01021994);
    expect(onMemoryFs(os.tmpdir())).toBe([0x01021994, 0x858458f6].includes(fsType(os.tmpdir())));
    expect(onMemoryFs('/nonexistent/vhp-dir')).toBe(false);
  });

  it('an atomic write on tmpfs still replaces the file (no fsync needed for that)', async () => {
    if (!fs.existsSync('/dev/shm') || !onMemoryFs('/dev/shm')) return;
    const d = fs.mkdtempSync('/dev/shm/vhp-atomic-');
    try {
      await writeFileAtomic(path.join(d, 'f'), 'one', { fsync: true });
      await writeFileAtomic(path.join(d, 'f'), 'two', { fsync: true });
      expect(fs.readFileSync(path.join(d, 'f'), 'utf8')).toBe('two');
      expect(fs.readdirSync(d)).toEqual(['f']);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
