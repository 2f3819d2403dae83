import { describe, expect, it } from 'vitest';
import { CniError, CniErrorCode } from '../../src/cni/errors';
import { parseCniArgs, parseCniEnv, REQUIRED_ENV, MAX_CONTAINER_ID_LENGTH } from '../../src/cni/env';
import { CNI_COMMANDS } from '../../src/cni/spec';

const FULL = {
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'net1',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};

/** Runs fn and returns the CniError it throws (fails the test otherwise). */
function cniErrorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error('expected a CniError');
}

describe('parseCniEnv', () => {
  it('parses a full ADD environment', () => {
    const env = parseCniEnv({
      ...FULL,
      CNI_COMMAND: 'ADD',
      CNI_ARGS: 'K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0',
      HOME: '/root',
    });
    expect(env.command).toBe('ADD');
    expect(env.containerId).toBe('c0ffee');
    expect(env.netns).toBe('/var/run/netns/pod1');
    expect(env.ifname).toBe('net1');
    expect(env.path).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(env.args.podNamespace).toBe('ns1');
    expect(env.args.podName).toBe('web-0');
    // Only CNI_* variables are kept for delegation.
    expect(env.raw).not.toHaveProperty('HOME');
    expect(env.raw.CNI_COMMAND).toBe('ADD');
  });

  // Every command's required variables, as skel defines them: dropping any one gives code 4.
  for (const command of CNI_COMMANDS) {
    const required = REQUIRED_ENV[command];
    it(`${command}: requires exactly [${required.join(', ')}]`, () => {
      expect(parseCniEnv({ CNI_COMMAND: command, ...FULL }).command).toBe(command);
      for (const name of required) {
        const env: Record<string, string> = { CNI_COMMAND: command, ...FULL };
        delete env[name];
        const err = cniErrorOf(() => parseCniEnv(env));
        expect(err.cniCode).toBe(CniErrorCode.InvalidEnvironment);
        expect(err.msg).toContain(name);
        // An empty value counts as missing.
        expect(cniErrorOf(() => parseCniEnv({ ...env, [name]: '' })).cniCode).toBe(4);
      }
      // Variables not required may be absent.
      const minimal: Record<string, string> = { CNI_COMMAND: command };
      for (const name of required) minimal[name] = (FULL as Record<string, string>)[name]!;
      expect(parseCniEnv(minimal).command).toBe(command);
    });
  }

  it('DEL succeeds without CNI_NETNS (the netns may be gone)', () => {
    const env = parseCniEnv({
      CNI_COMMAND: 'DEL',
      CNI_CONTAINERID: 'abc',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
    });
    expect(env.netns).toBeUndefined();
  });

  it('lists every missing variable at once', () => {
    const err = cniErrorOf(() => parseCniEnv({ CNI_COMMAND: 'ADD' }));
    expect(err.msg).toBe('required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing');
  });

  it('rejects a missing or unknown CNI_COMMAND with code 4', () => {
    expect(cniErrorOf(() => parseCniEnv({ ...FULL })).cniCode).toBe(4);
    const err = cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'UPDATE' }));
    expect(err.cniCode).toBe(4);
    expect(err.msg).toBe('unknown CNI_COMMAND: UPDATE');
    expect(cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'add' })).cniCode).toBe(4);
  });

  const badContainerIds = [
    '../../etc/passwd',
    '..',
    '.hidden',
    'a/b',
    '-leading-dash',
    '_leading',
    'has space',
    'semi;colon',
    'nul\0byte',
    'ünïcode',
    'x'.repeat(MAX_CONTAINER_ID_LENGTH + 1),
  ];
  for (const id of badContainerIds) {
    it(`rejects container id ${JSON.stringify(id.length > 40 ? `${id.slice(0, 10)}...(${id.length})` : id)} with code 4`, () => {
      const err = cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }));
      expect(err.cniCode).toBe(CniErrorCode.InvalidEnvironment);
      expect(err.msg).toBe('invalid CNI_CONTAINERID');
    });
  }

  it('accepts the spec charset for container ids', () => {
    for (const id of ['a', 'A1', '0123abcdef', 'pod_1.2-x', 'a..b', 'x'.repeat(MAX_CONTAINER_ID_LENGTH)]) {
      expect(parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }).containerId).toBe(id);
    }
  });

  const badIfnames = ['.', '..', '../x', 'a/b', 'eth:0', 'eth 0', 'tab\there', 'nl\n', 'x'.repeat(16), 'ééééééééé'];
  for (const name of badIfnames) {
    it(`rejects ifname ${JSON.stringify(name)} with code 4`, () => {
      const err = cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_IFNAME: name }));
      expect(err.cniCode).toBe(CniErrorCode.InvalidEnvironment);
      expect(err.msg).toBe('invalid CNI_IFNAME');
    });
  }

  it('accepts a 15-byte ifname', () => {
    expect(parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_IFNAME: 'x'.repeat(15) }).ifname).toHaveLength(15);
  });

  it('rejects relative or traversing netns and CNI_PATH entries', () => {
    for (const netns of ['netns/pod', '/var/run/netns/../../etc/x', '/proc/./1/ns/net']) {
      const err = cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_NETNS: netns }));
      expect(err.cniCode).toBe(4);
      expect(err.msg).toBe('invalid CNI_NETNS');
    }
    const err = cniErrorOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_PATH: '/opt/cni/bin:bin' }));
    expect(err.cniCode).toBe(4);
    expect(err.msg).toBe('invalid CNI_PATH');
    // Empty entries are harmless and dropped.
    expect(parseCniEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_PATH: ':/opt/cni/bin::' }).path).toEqual(['/opt/cni/bin']);
  });

  it('VERSION needs nothing but CNI_COMMAND and ignores malformed others', () => {
    const env = parseCniEnv({ CNI_COMMAND: 'VERSION', CNI_CONTAINERID: '../bad', CNI_IFNAME: '..' });
    expect(env.command).toBe('VERSION');
    expect(env.containerId).toBeUndefined();
  });
});

describe('parseCniArgs', () => {
  it('splits on ";" and the first "="', () => {
    const a = parseCniArgs(
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=p.1;K8S_POD_UID=0b5c11ee-0000-4000-8000-000000000001;EXTRA=a=b=c;K8S_POD_INFRA_CONTAINER_ID=deadbeef',
    );
    expect(a.pairs.get('IgnoreUnknown')).toBe('1');
    expect(a.pairs.get('EXTRA')).toBe('a=b=c');
    expect(a.podNamespace).toBe('kube-system');
    expect(a.podName).toBe('p.1');
    expect(a.podUid).toBe('0b5c11ee-0000-4000-8000-000000000001');
    expect(a.podInfraContainerId).toBe('deadbeef');
  });

  it('tolerates empty segments and empty input', () => {
    expect(parseCniArgs('').pairs.size).toBe(0);
    expect(parseCniArgs(undefined).pairs.size).toBe(0);
    expect(parseCniArgs(';A=1;;').pairs.get('A')).toBe('1');
    expect(parseCniArgs('A=').pairs.get('A')).toBe('');
  });

  it('normalises MAC and rejects a bad one', () => {
    expect(parseCniArgs('MAC=0A-00-27-00-00-01').mac).toBe('0a:00:27:00:00:01');
    for (const bad of ['01:00:5e:00:00:01', 'zz:00:00:00:00:00', '00:00:00:00:00:00', '0a:00:27:00:00']) {
      expect(() => parseCniArgs(`MAC=${bad}`)).toThrowError(CniError);
    }
  });

  it('rejects malformed pairs, repeated keys and bad K8S values with code 4', () => {
    for (const bad of [
      'NOEQUALS',
      '=value',
      'A=1;A=2',
      'K8S_POD_NAMESPACE=Bad_NS',
      'K8S_POD_NAMESPACE=../x',
      'K8S_POD_NAME=-x',
      'K8S_POD_UID=a/b',
      'K8S_POD_UID=0b5c-11ee',
      'K8S_POD_INFRA_CONTAINER_ID=../x',
    ]) {
      const err = cniErrorOf(() => parseCniArgs(bad));
      expect(err.cniCode).toBe(CniErrorCode.InvalidEnvironment);
      expect(err.msg).toBe('invalid CNI_ARGS');
    }
  });
});
