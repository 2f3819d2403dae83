/**
 * Per-pod directories and who may use them (src/binding/pod-dir.ts), the validators behind
 * the netconf keys `owner`, `socketMode`, `seLabel` (src/core/validate.ts), and those keys
 * in the netconf (src/cni/netconf.ts).
 */
import { describe, expect, it } from 'vitest';
import { accessModes, dirModeFor, podAccessFromSecurityContext, podDirOf } from '../../src/binding/pod-dir';
import { validateOwner, validateSeLabel, validateSocketMode, ValidationError } from '../../src/core/validate';
import { parseNetConf } from '../../src/cni/netconf';
import { CniError } from '../../src/cni/errors';

const UID = 'c0ffee00-1111-4222-8333-444455556666';

describe('owner, socketMode, seLabel validators', () => {
  it('owner is numeric UID:GID', () => {
    expect(validateOwner('1000:2000')).toEqual({ uid: 1000, gid: 2000 });
    expect(validateOwner('0:0')).toEqual({ uid: 0, gid: 0 });
    for (const bad of ['root:root', '1000', '1000:', ':1000', '1:2:3', '-1:0', '4294967295:0', ' 1:2', '1e3:0']) {
      expect(() => validateOwner(bad), bad).toThrow(ValidationError);
    }
  });
  it('socketMode: owner rw, no world-write, no set-id or sticky bits', () => {
    expect(validateSocketMode('0660')).toBe(0o660);
    expect(validateSocketMode('600')).toBe(0o600);
    expect(validateSocketMode('0o640')).toBe(0o640);
    expect(validateSocketMode(0o664)).toBe(0o664);
    for (const bad of ['0666', '0662', '4660', '1660', '0440', '0200', 'rw-rw----', '0x1b0', '99', '']) {
      expect(() => validateSocketMode(bad), bad).toThrow(ValidationError);
    }
  });
  it('seLabel is an SELinux context', () => {
    for (const ok of [
      'system_u:object_r:container_file_t:s0',
      'system_u:object_r:container_file_t:s0:c1,c2',
      'u:r:t',
      'system_u:object_r:svirt_sandbox_file_t:s0-s0:c0.c1023',
    ]) {
      expect(validateSeLabel(ok)).toBe(ok);
    }
    for (const bad of ['', 'container_file_t', 'a:b', 'a b:c:d', 'u:r:t:s0\n', 'u:r:t;rm', 'x'.repeat(300)]) {
      expect(() => validateSeLabel(bad), JSON.stringify(bad)).toThrow(ValidationError);
    }
  });
});

describe('access modes', () => {
  it('directory bits follow the socket bits plus x where r is set', () => {
    expect(dirModeFor(0o660)).toBe(0o770);
    expect(dirModeFor(0o640)).toBe(0o750);
    expect(dirModeFor(0o600)).toBe(0o700);
  });
  it('with an owner: socket 0660, directory 0770, files 0640, all owned, labelled', () => {
    expect(accessModes({ uid: 1000, gid: 2000, seLabel: 'u:r:t' })).toEqual({
      dir: { uid: 1000, gid: 2000, mode: 0o770, seLabel: 'u:r:t' },
      socket: { uid: 1000, gid: 2000, mode: 0o660, seLabel: 'u:r:t' },
      file: { uid: 1000, gid: 2000, mode: 0o640, seLabel: 'u:r:t' },
    });
    expect(accessModes({ uid: 1000, gid: 1000, socketMode: 0o600 }).dir.mode).toBe(0o700);
  });
  it("without one: root's defaults as before (files config_file_mode, socket untouched)", () => {
    expect(accessModes(undefined, { fileMode: 0o644 })).toEqual({
      dir: { mode: 0o755 },
      socket: {},
      file: { mode: 0o644 },
    });
    expect(accessModes({}, { fileMode: 0o640, configFileOwner: { gid: 5 } }).file).toEqual({ mode: 0o640, gid: 5 });
  });
  it('Kuryr: the Pod securityContext over the node defaults (GID: fsGroup, else runAsGroup)', () => {
    const base = { uid: 1, gid: 1, socketMode: 0o600 };
    expect(podAccessFromSecurityContext({ runAsUser: 1000, runAsGroup: 2000, fsGroup: 3000 }, base)).toEqual({
      uid: 1000,
      gid: 3000,
      socketMode: 0o600,
    });
    expect(podAccessFromSecurityContext({ runAsUser: 1000, runAsGroup: 2000 }, base)).toEqual({
      uid: 1000,
      gid: 2000,
      socketMode: 0o600,
    });
    expect(podAccessFromSecurityContext(undefined, base)).toEqual(base);
    expect(podAccessFromSecurityContext({ fsGroup: 7 })).toEqual({ gid: 7 });
  });
  it('the pod directory is <mount_point>/<pod-uid>, the UID validated', () => {
    expect(podDirOf('/var/run/vhostuser', UID)).toBe(`/var/run/vhostuser/${UID}`);
    expect(() => podDirOf('/var/run/vhostuser', '../x')).toThrow(ValidationError);
  });
});

describe('netconf keys', () => {
  const base = { cniVersion: '1.1.0', name: 'n', type: 'vhostplug', mode: 'client' };
  it('socketLayout defaults to per-pod; owner, socketMode, seLabel, podMountPath parsed', () => {
    const c = parseNetConf({
      ...base,
      owner: '1000:2000',
      socketMode: '0640',
      seLabel: 'u:r:t:s0',
      podMountPath: '/dev/vhu/',
    });
    expect(c.socketLayout).toBe('per-pod');
    expect(c.access).toEqual({ uid: 1000, gid: 2000, socketMode: 0o640, seLabel: 'u:r:t:s0' });
    expect(c.podMountPath).toBe('/dev/vhu');
    expect(parseNetConf({ ...base, socketLayout: 'flat' }).socketLayout).toBe('flat');
    expect(parseNetConf(base).access).toBeUndefined();
  });
  it('bad values are CNI error 7 naming the key', () => {
    for (const [k, v, msg] of [
      ['owner', 'root', /owner "root"/],
      ['socketMode', '0666', /socketMode "0666" must not be world-writable/],
      ['socketMode', 432, /socketMode must be a string/],
      ['seLabel', 'x', /seLabel "x"/],
      ['socketLayout', 'tree', /socketLayout "tree"/],
      ['podMountPath', 'rel', /podMountPath/],
    ] as const) {
      let err: unknown;
      try {
        parseNetConf({ ...base, [k]: v });
      } catch (e) {
        err = e;
      }
      expect(err, k).toBeInstanceOf(CniError);
      expect((err as CniError).cniCode).toBe(7);
      expect(`${(err as CniError).msg}: ${(err as CniError).details}`).toMatch(msg);
    }
    expect(() => parseNetConf({ ...base, mode: 'veth', owner: '1:1' })).toThrow(CniError);
  });
});
