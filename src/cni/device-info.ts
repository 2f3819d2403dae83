/**
 * NPWG device-info (k8snetworkplumbingwg device-info-spec v1.1.0) for vhost-user
 * attachments. When a NetworkAttachmentDefinition declares the `CNIDeviceInfoFile`
 * capability, Multus passes a path in `runtimeConfig.CNIDeviceInfoFile`; the plugin writes
 *
 *   {"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"/..."}}
 *
 * there during ADD and Multus copies it into the pod's `k8s.v1.cni.cncf.io/network-status`
 * annotation (`device-info`), where app-netutil-style consumers find the socket.
 *
 * `mode` is the role the pod application takes, the same sense as the netconf `mode` and
 * the per-interface config file: `client` = the app connects (OVS `dpdkvhostuser` listens),
 * `server` = the app listens (OVS `dpdkvhostuserclient` connects).
 *
 * Safety: the path comes from the runtime, but it is still confined to the device-info
 * directories ({@link DEFAULT_DEVICE_INFO_DIRS}) so a config can never make the daemon
 * write elsewhere. Writes are atomic (temp file, fsync, rename, directory fsync), mode
 * 0444 as Multus writes its own; removal is idempotent.
 */
import { hasCode } from '../core/errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CniError, CniErrorCode } from './errors';
import { absolutePathProblem } from './env';

/** Device-info spec version written. */
export const DEVICE_INFO_VERSION = '1.1.0';

/** Where Multus keeps device-info files (`/var/run` is usually a symlink to `/run`). */
export const DEFAULT_DEVICE_INFO_DIRS: readonly string[] = [
  '/var/run/k8s.cni.cncf.io/devinfo',
  '/run/k8s.cni.cncf.io/devinfo',
];

/** A vhost-user device-info document. */
export interface VhostUserDeviceInfo {
  type: 'vhost-user';
  version: string;
  'vhost-user': {
    mode: 'client' | 'server';
    path: string;
  };
}

/** Builds the document for a vhost-user socket. */
export function vhostUserDeviceInfo(mode: 'client' | 'server', socketPath: string): VhostUserDeviceInfo {
  const why = absolutePathProblem(socketPath);
  if (why) throw new CniError(CniErrorCode.InvalidConfig, 'invalid vhost-user socket path', `"${socketPath}" ${why}`);
  return { type: 'vhost-user', version: DEVICE_INFO_VERSION, 'vhost-user': { mode, path: socketPath } };
}

export interface DeviceInfoOptions {
  /** Directories the file may live under. Default {@link DEFAULT_DEVICE_INFO_DIRS}. */
  allowedDirs?: readonly string[];
}

/**
 * Checks a CNIDeviceInfoFile path: absolute, normalised, strictly inside an allowed
 * directory. Throws CniError 7.
 */
export function checkDeviceInfoPath(file: string, opts: DeviceInfoOptions = {}): string {
  const why = absolutePathProblem(file);
  if (why) throw new CniError(CniErrorCode.InvalidConfig, 'invalid CNIDeviceInfoFile', `"${file}" ${why}`);
  const dirs = opts.allowedDirs ?? DEFAULT_DEVICE_INFO_DIRS;
  const inside = dirs.some((d) => {
    const rel = path.relative(path.resolve(d), file);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
  if (!inside) {
    throw new CniError(
      CniErrorCode.InvalidConfig,
      'invalid CNIDeviceInfoFile',
      `"${file}" is outside the device-info directories [${dirs.join(' ')}]`,
    );
  }
  return file;
}

/**
 * Writes the device-info file atomically (replacing an older one from a retried ADD).
 * Creates the parent directory (0755) if needed. Throws CniError 7 (path) or 5 (I/O).
 */
export async function writeDeviceInfo(
  file: string,
  info: VhostUserDeviceInfo,
  opts: DeviceInfoOptions = {},
): Promise<void> {
  checkDeviceInfoPath(file, opts);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o755 });
    const fh = await fs.promises.open(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o444,
    );
    try {
      await fh.writeFile(JSON.stringify(info));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    const dh = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw new CniError(
      CniErrorCode.IoFailure,
      'cannot write the device-info file',
      `${file}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** Reads a device-info file back (CHECK); undefined when it does not exist. */
export async function readDeviceInfo(file: string, opts: DeviceInfoOptions = {}): Promise<unknown> {
  checkDeviceInfoPath(file, opts);
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8')) as unknown;
  } catch (e) {
    if (hasCode(e, 'ENOENT')) return undefined;
    throw new CniError(CniErrorCode.IoFailure, 'cannot read the device-info file', `${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** Removes the device-info file; succeeds when it is already gone (DEL is idempotent). */
export async function removeDeviceInfo(file: string, opts: DeviceInfoOptions = {}): Promise<void> {
  checkDeviceInfoPath(file, opts);
  try {
    await fs.promises.unlink(file);
  } catch (e) {
    if (!hasCode(e, 'ENOENT')) {
      throw new CniError(
        CniErrorCode.IoFailure,
        'cannot remove the device-info file',
        `${file}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
}
