import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors';
import {
  checkDeviceInfoPath,
  readDeviceInfo,
  removeDeviceInfo,
  vhostUserDeviceInfo,
  writeDeviceInfo,
} from '../../src/cni/device-info';

let root: string;
let opts: { allowedDirs: string[] };

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-devinfo-'));
  opts = { allowedDirs: [path.join(root, 'devinfo')] };
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('device-info', () => {
  it('builds the NPWG v1.1.0 vhost-user document', () => {
    expect(vhostUserDeviceInfo('server', '/var/run/vhostplug/c/vhu1')).toEqual({
      type: 'vhost-user',
      version: '1.1.0',
      'vhost-user': { mode: 'server', path: '/var/run/vhostplug/c/vhu1' },
    });
    expect(() => vhostUserDeviceInfo('client', 'relative')).toThrowError(CniError);
  });

  it('writes atomically (0444, no temp file left), replaces, reads back and removes idempotently', async () => {
    const file = path.join(root, 'devinfo', 'cni', 'c0ffee-net1');
    await writeDeviceInfo(file, vhostUserDeviceInfo('client', '/run/a'), opts);
    expect(fs.statSync(file).mode & 0o777).toBe(0o444);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({
      type: 'vhost-user',
      'vhost-user': { path: '/run/a' },
    });
    // A retried ADD replaces the file.
    await writeDeviceInfo(file, vhostUserDeviceInfo('server', '/run/b'), opts);
    expect(await readDeviceInfo(file, opts)).toMatchObject({ 'vhost-user': { mode: 'server', path: '/run/b' } });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['c0ffee-net1']);
    await removeDeviceInfo(file, opts);
    expect(fs.existsSync(file)).toBe(false);
    await removeDeviceInfo(file, opts); // already gone: still fine
    expect(await readDeviceInfo(file, opts)).toBeUndefined();
  });

  it('refuses paths outside the device-info directories (code 7) and writes nothing', async () => {
    const outside = [
      path.join(root, 'elsewhere', 'x'),
      path.join(root, 'devinfo'),
      `${path.join(root, 'devinfo')}/../escape`,
      `${path.join(root, 'devinfo')}-sibling/x`,
      'relative/x',
    ];
    for (const file of outside) {
      expect(() => checkDeviceInfoPath(file, opts), file).toThrowError(CniError);
      await expect(writeDeviceInfo(file, vhostUserDeviceInfo('client', '/run/a'), opts)).rejects.toMatchObject({
        cniCode: 7,
      });
    }
    expect(fs.readdirSync(root)).toEqual([]);
    // The defaults are Multus's directories.
    expect(() => checkDeviceInfoPath('/var/run/k8s.cni.cncf.io/devinfo/cni/x')).not.toThrow();
    expect(() => checkDeviceInfoPath('/etc/passwd')).toThrowError(CniError);
  });

  it('reports an I/O failure as code 5 and leaves no temp file', async () => {
    const dir = path.join(root, 'devinfo');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'is-a-dir');
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'keep'), 'x'); // rename over a non-empty dir fails
    await expect(writeDeviceInfo(file, vhostUserDeviceInfo('client', '/run/a'), opts)).rejects.toMatchObject({
      cniCode: 5,
    });
    expect(fs.readdirSync(dir)).toEqual(['is-a-dir']);
  });
});
