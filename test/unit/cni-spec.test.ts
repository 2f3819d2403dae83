import { describe, expect, it } from 'vitest';
import { CniError, CniErrorCode, isCniError, toCniError } from '../../src/cni/errors';
import {
  assertCommandAllowed,
  compareCniVersions,
  CURRENT_CNI_VERSION,
  negotiateCniVersion,
  SUPPORTED_CNI_VERSIONS,
  versionReply,
} from '../../src/cni/spec';

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    expect(isCniError(e)).toBe(true);
    return (e as CniError).cniCode;
  }
  throw new Error('expected a CniError');
}

describe('CNI versions', () => {
  it('supports 0.3.0 through 1.1.0, current 1.1.0', () => {
    expect([...SUPPORTED_CNI_VERSIONS]).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    expect(CURRENT_CNI_VERSION).toBe('1.1.0');
  });

  it('answers VERSION with the input version (else the current one) and every supported version', () => {
    expect(versionReply()).toEqual({
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    expect(versionReply('1.0.0').cniVersion).toBe('1.0.0');
    expect(versionReply('2.0.0').cniVersion).toBe('2.0.0');
    for (const bad of [undefined, 42, '', '1.0', 'x.y.z', '01.0.0']) expect(versionReply(bad).cniVersion).toBe('1.1.0');
  });

  it('compares numerically, not lexically', () => {
    expect(compareCniVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareCniVersions('1.0.0', '1.0.0')).toBe(0);
    expect(compareCniVersions('0.3.1', '1.1.0')).toBeLessThan(0);
    expect(() => compareCniVersions('1.0', '1.0.0')).toThrow(TypeError);
  });

  it('takes cniVersion when present', () => {
    expect(negotiateCniVersion({ cniVersion: '0.3.1' })).toBe('0.3.1');
    expect(negotiateCniVersion({ cniVersion: '1.0.0', cniVersions: ['1.1.0'] })).toBe('1.0.0');
  });

  it('picks the highest common entry of cniVersions when cniVersion is absent', () => {
    expect(negotiateCniVersion({ cniVersions: ['0.4.0', '1.1.0', '1.0.0', '2.0.0'] })).toBe('1.1.0');
    expect(negotiateCniVersion({ cniVersions: ['9.9.9', '0.3.1'] })).toBe('0.3.1');
  });

  it('refuses unknown or missing versions with code 1, wrong types with 7', () => {
    expect(codeOf(() => negotiateCniVersion({ cniVersion: '2.0.0' }))).toBe(CniErrorCode.IncompatibleVersion);
    expect(codeOf(() => negotiateCniVersion({ cniVersion: '0.2.0' }))).toBe(1);
    expect(codeOf(() => negotiateCniVersion({ cniVersion: 'banana' }))).toBe(1);
    expect(codeOf(() => negotiateCniVersion({}))).toBe(1);
    expect(codeOf(() => negotiateCniVersion({ cniVersions: ['5.0.0'] }))).toBe(1);
    expect(codeOf(() => negotiateCniVersion({ cniVersion: 1.1 }))).toBe(CniErrorCode.InvalidConfig);
    expect(codeOf(() => negotiateCniVersion({ cniVersions: '1.1.0' }))).toBe(7);
    expect(codeOf(() => negotiateCniVersion({ cniVersions: [1] }))).toBe(7);
  });

  it('gates CHECK on 0.4.0 and GC/STATUS on 1.1.0 (code 1)', () => {
    expect(() => assertCommandAllowed('CHECK', '0.4.0')).not.toThrow();
    expect(codeOf(() => assertCommandAllowed('CHECK', '0.3.1'))).toBe(1);
    expect(() => assertCommandAllowed('GC', '1.1.0')).not.toThrow();
    expect(codeOf(() => assertCommandAllowed('GC', '1.0.0'))).toBe(1);
    expect(codeOf(() => assertCommandAllowed('STATUS', '0.4.0'))).toBe(1);
    for (const v of SUPPORTED_CNI_VERSIONS) {
      expect(() => assertCommandAllowed('ADD', v)).not.toThrow();
      expect(() => assertCommandAllowed('DEL', v)).not.toThrow();
    }
  });
});

describe('CniError', () => {
  it('has the spec JSON shape {cniVersion, code, msg, details}', () => {
    const e = new CniError(CniErrorCode.TryAgainLater, 'daemon busy', 'retry in a moment');
    expect(e.toJSON('0.4.0')).toEqual({
      cniVersion: '0.4.0',
      code: 11,
      msg: 'daemon busy',
      details: 'retry in a moment',
    });
    expect(Object.keys(JSON.parse(e.format('1.1.0')))).toEqual(['cniVersion', 'code', 'msg', 'details']);
    expect(e.message).toBe('daemon busy: retry in a moment');
    expect(e).toBeInstanceOf(Error);
  });

  it('omits empty details', () => {
    expect(new CniError(3, 'unknown container').toJSON('1.0.0')).toEqual({
      cniVersion: '1.0.0',
      code: 3,
      msg: 'unknown container',
    });
    expect('details' in new CniError(3, 'x', '').toJSON('1.0.0')).toBe(false);
  });

  it('keeps the spec codes', () => {
    expect(CniErrorCode).toMatchObject({
      IncompatibleVersion: 1,
      UnsupportedField: 2,
      UnknownContainer: 3,
      InvalidEnvironment: 4,
      IoFailure: 5,
      DecodeFailure: 6,
      InvalidConfig: 7,
      TryAgainLater: 11,
      PluginNotAvailable: 50,
      PluginNotAvailableLimitedConnectivity: 51,
    });
  });

  it('maps foreign errors: system errors to 5, others to 100', () => {
    const sys = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), {
      code: 'ENOENT',
      syscall: 'open',
      path: '/x',
    });
    const io = toCniError(sys);
    expect(io.cniCode).toBe(CniErrorCode.IoFailure);
    expect(io.msg).toBe('open failed');
    expect(io.details).toContain('ENOENT');
    expect(io.cause).toBe(sys);
    expect(toCniError(new TypeError('boom')).cniCode).toBe(CniErrorCode.Internal);
    expect(toCniError('a string').toJSON('1.1.0')).toEqual({
      cniVersion: '1.1.0',
      code: 100,
      msg: 'internal error',
      details: 'a string',
    });
    const own = new CniError(7, 'bad');
    expect(toCniError(own)).toBe(own);
  });
});
