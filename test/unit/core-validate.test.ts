/** Validation of names and paths: each rule, its boundary and the error's shape. */
import { describe, expect, it } from 'vitest';
import {
  MAX_CONTAINER_ID_BYTES,
  ValidationError,
  isValidationError,
  validateAbsolutePath,
  validateContainerId,
  validateFileName,
  validateIfName,
  validateMac,
  validateMode,
  validatePodUid,
  validateUnixSocketPath,
  validateVifName,
} from '../../src/core/validate';
import { canonicalMac } from '../../src/core/net';

function rejects(fn: () => unknown, rule: string, field?: string): ValidationError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a ValidationError (${rule})`).toBeInstanceOf(ValidationError);
  const e = caught as ValidationError;
  expect(e.rule).toBe(rule);
  expect(e.code).toBe('EVALIDATION');
  if (field) expect(e.field).toBe(field);
  expect(e.message).toMatch(/^invalid /);
  return e;
}

describe('container id (CNI spec charset)', () => {
  it('accepts the CNI charset', () => {
    for (const id of ['a', '0', 'abc123', 'a.b_c-d', 'f'.repeat(64), `a${'-'.repeat(MAX_CONTAINER_ID_BYTES - 1)}`]) {
      expect(validateContainerId(id)).toBe(id);
    }
  });
  it('refuses everything else', () => {
    rejects(() => validateContainerId(''), 'empty', 'container id');
    for (const id of ['-a', '.a', '_a', 'a/b', 'a b', '../x', 'a:b', 'é', 'a\n'])
      rejects(() => validateContainerId(id), 'charset');
    rejects(() => validateContainerId('a'.repeat(MAX_CONTAINER_ID_BYTES + 1)), 'too-long');
    rejects(() => validateContainerId(42), 'type');
  });
  it('the error carries field and value', () => {
    const e = rejects(() => validateContainerId('../etc', 'CNI_CONTAINERID'), 'charset', 'CNI_CONTAINERID');
    expect(e.value).toBe('../etc');
    expect(e.message).toContain('"../etc"');
    expect(isValidationError(e)).toBe(true);
  });
});

describe('interface and OVS port names (Linux dev_valid_name)', () => {
  it('accepts up to 15 bytes', () => {
    for (const n of ['eth0', 'net1', 'vhu9c9cc8f5-88', 'a'.repeat(15), 'é'.repeat(7), 'x.y', '...'])
      expect(validateIfName(n)).toBe(n);
    expect(validateVifName('vhub679325f-ca')).toBe('vhub679325f-ca');
  });
  it('refuses what the kernel refuses', () => {
    rejects(() => validateIfName(''), 'empty');
    rejects(() => validateIfName('a'.repeat(16)), 'too-long');
    rejects(() => validateIfName('é'.repeat(8)), 'too-long'); // 16 bytes
    rejects(() => validateIfName('.'), 'reserved');
    rejects(() => validateIfName('..'), 'reserved');
    for (const n of ['a/b', 'a:1', 'a b', 'a\tb', 'a\nb', 'a\u00a0b', 'à', 'a\u0000'])
      rejects(() => validateIfName(n), 'charset');
    rejects(() => validateVifName('../vhu'), 'charset', 'vif_name');
  });
});

describe('MAC', () => {
  it('canonicalMac reads what os-vif reads', () => {
    expect(canonicalMac('FA:16:3E:01:02:03')).toBe('fa:16:3e:01:02:03');
    expect(canonicalMac('fa-16-3e-01-02-03')).toBe('fa:16:3e:01:02:03');
    expect(canonicalMac('01:00:5e:00:00:01')).toBe('01:00:5e:00:00:01'); // multicast is still a MAC
    for (const bad of [
      'fa163e010203',
      '1:2:3:4:5:6',
      'fa16.3e01.0203',
      'fa:16:3e:01:02',
      'fa:16:3e:01:02:03:04',
      'gg:16:3e:01:02:03',
    ]) {
      expect(canonicalMac(bad), bad).toBeUndefined();
    }
  });
  it('validateMac wants a unicast, non-zero address and returns the lower-case colon form', () => {
    expect(validateMac('FA-16-3E-01-02-03')).toBe('fa:16:3e:01:02:03');
    rejects(() => validateMac('01:00:5e:00:00:01'), 'multicast');
    rejects(() => validateMac('ff:ff:ff:ff:ff:ff'), 'multicast');
    rejects(() => validateMac('00:00:00:00:00:00'), 'zero');
    rejects(() => validateMac('fa163e010203'), 'charset');
  });
});

describe('mode and pod UID', () => {
  it('mode is client or server', () => {
    expect(validateMode('client')).toBe('client');
    expect(validateMode('server')).toBe('server');
    for (const m of ['Client', 'dpdkvhostuser', '', null]) rejects(() => validateMode(m), 'enum', 'mode');
  });
  it('pod UID: a UUID or a static pod hash', () => {
    expect(validatePodUid('c0ffee00-1111-4222-8333-444455556666')).toBe('c0ffee00-1111-4222-8333-444455556666');
    expect(validatePodUid('0123456789abcdef0123456789abcdef')).toBe('0123456789abcdef0123456789abcdef');
    rejects(() => validatePodUid(''), 'empty');
    rejects(() => validatePodUid('a/b'), 'charset');
    rejects(() => validatePodUid('x'.repeat(65)), 'charset');
    for (const bad of [
      '0b5c-11ee',
      'c0ffee00-1111-4222-8333-44445555666',
      'c0ffee00111142228333444455556666x',
      'g0ffee00-1111-4222-8333-444455556666',
      '../c0ffee00-1111-4222-8333-444455556666',
    ]) {
      rejects(() => validatePodUid(bad), 'charset');
    }
  });
});

describe('paths', () => {
  it('absolute paths are normalised; . and .. are refused', () => {
    expect(validateAbsolutePath('/var/run/openvswitch/')).toBe('/var/run/openvswitch');
    expect(validateAbsolutePath('//var//run')).toBe('/var/run');
    expect(validateAbsolutePath('/')).toBe('/');
    rejects(() => validateAbsolutePath('var/run'), 'not-absolute');
    rejects(() => validateAbsolutePath(''), 'empty');
    rejects(() => validateAbsolutePath('/var/../etc'), 'dot-component');
    rejects(() => validateAbsolutePath('/var/./run'), 'dot-component');
    rejects(() => validateAbsolutePath('/var/\0'), 'charset');
    rejects(() => validateAbsolutePath(`/${'a'.repeat(4095)}`), 'too-long');
  });
  it('a unix socket path fits 107 bytes, no more', () => {
    const ok = `/${'a'.repeat(106)}`;
    expect(validateUnixSocketPath(ok)).toBe(ok);
    const e = rejects(() => validateUnixSocketPath(`/${'a'.repeat(107)}`), 'too-long');
    expect(e.message).toMatch(/sun_path/);
    rejects(() => validateUnixSocketPath('sock'), 'not-absolute');
  });
  it('file names are one component', () => {
    expect(validateFileName('abc-eth0')).toBe('abc-eth0');
    rejects(() => validateFileName('a/b'), 'charset');
    rejects(() => validateFileName('..'), 'reserved');
    rejects(() => validateFileName('a'.repeat(256)), 'too-long');
  });
});
