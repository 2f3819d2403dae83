/**
 * IPAM delegation: runs a standard IPAM plugin (host-local, static, dhcp, whereabouts...)
 * found in CNI_PATH, the way libcni's `invoke.DelegateAdd/Check/Del` does, and turns its
 * output into the internal result model.
 *
 * - The delegate gets the caller's CNI_* environment (never the daemon's own), with
 *   CNI_COMMAND set, and the network configuration as received (unknown keys included).
 * - Version negotiation: a delegate may not speak our config's version (Debian's host-local
 *   1.1.1 stops at 1.0.0). We ask it VERSION once (cached per binary and mtime) and send
 *   the highest version both sides support that is not newer than the config's; its result
 *   is decoded from that version. GC and STATUS need 1.1.0 at the delegate: when it is
 *   older they are skipped and reported as such (`{ skipped: ... }`), not failed.
 * - A non-zero exit carries the delegate's CNI error (code, msg, details) upwards; a
 *   delegate that cannot be found is error 7 (invalid config), one that cannot be run or
 *   times out is error 5, undecodable output is error 6.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CniError, CniErrorCode } from './errors';
import type { CniEnv } from './env';
import { delegateConfig, type NetConf } from './netconf';
import { encodeResult, parseResult, type CniResult } from './result';
import { compareCniVersions, isSupportedCniVersion, versionAtLeast, type CniCommand, type CniVersion } from './spec';

/** Default bound on one delegate run (ms). */
export const DEFAULT_IPAM_TIMEOUT_MS = 60_000;
const MAX_OUTPUT = 1024 * 1024;

export interface ExecOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Output of a delegate run that exited 0. */
export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Finds plugin `type` in the CNI_PATH directories (first match, regular executable file).
 * Throws CniError 7 when the name is not a plain file name or nothing is found.
 */
export async function findPlugin(type: string, cniPath: readonly string[]): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) {
    throw new CniError(CniErrorCode.InvalidConfig, 'invalid plugin type', `"${type}" is not a plain executable name`);
  }
  for (const dir of cniPath) {
    const p = path.join(dir, type);
    try {
      const st = await fs.promises.stat(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CniErrorCode.InvalidConfig, `failed to find plugin "${type}" in path`, `[${cniPath.join(' ')}]`);
}

/** The plugin's own CNI error from its stdout, else an I/O failure quoting stderr. */
function pluginError(stdout: string, plugin: string, exitCode: number | null, stderr: string): CniError {
  try {
    const o = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof o.code === 'number' && typeof o.msg === 'string') {
      return new CniError(o.code, o.msg, typeof o.details === 'string' ? o.details : undefined);
    }
  } catch {
    // fall through
  }
  const why = stderr.trim() || stdout.trim() || `exit status ${exitCode}`;
  return new CniError(CniErrorCode.IoFailure, `plugin ${path.basename(plugin)} failed`, why.slice(0, 4096));
}

/**
 * Runs a CNI plugin binary with exactly `env` (plus a minimal PATH) and `stdin`. Resolves
 * its output on exit 0; rejects with the plugin's own CniError otherwise, or error 5 on
 * timeout/abort/spawn failure.
 */
export function execPlugin(
  plugin: string,
  env: Readonly<Record<string, string>>,
  stdin: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(plugin, [], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let failure: CniError | undefined;
    const kill = (e: CniError): void => {
      failure ??= e;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        kill(
          new CniError(
            CniErrorCode.IoFailure,
            `plugin ${path.basename(plugin)} timed out`,
            `no answer within ${opts.timeoutMs ?? DEFAULT_IPAM_TIMEOUT_MS} ms`,
          ),
        ),
      opts.timeoutMs ?? DEFAULT_IPAM_TIMEOUT_MS,
    );
    const onAbort = (): void =>
      kill(new CniError(CniErrorCode.IoFailure, `plugin ${path.basename(plugin)} aborted`, 'the caller went away'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => {
      outLen += c.length;
      if (outLen > MAX_OUTPUT)
        kill(new CniError(CniErrorCode.DecodeFailure, `plugin ${path.basename(plugin)} output too large`));
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (err.reduce((n, b) => n + b.length, 0) < 64 * 1024) err.push(c);
    });
    child.stdin.on('error', () => undefined); // EPIPE if the plugin exits without reading
    child.on('error', (e) => kill(new CniError(CniErrorCode.IoFailure, `cannot run plugin ${plugin}`, e.message)));
    child.on('close', (code) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (failure) reject(failure);
      else if (code === 0) resolve({ stdout, stderr });
      else reject(pluginError(stdout, plugin, code, stderr));
    });
    child.stdin.end(stdin);
  });
}

const versionCache = new Map<string, { mtimeMs: number; size: number; versions: string[] }>();

/** The spec versions a plugin binary supports (its VERSION reply), cached per binary. */
export async function pluginVersions(plugin: string, opts: ExecOptions = {}): Promise<string[]> {
  const st = await fs.promises.stat(plugin);
  const hit = versionCache.get(plugin);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.versions;
  const { stdout } = await execPlugin(plugin, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', opts);
  let versions: unknown;
  try {
    versions = (JSON.parse(stdout) as { supportedVersions?: unknown }).supportedVersions;
  } catch (e) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `cannot decode VERSION reply of ${path.basename(plugin)}`,
      (e as Error).message,
    );
  }
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string')) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `cannot decode VERSION reply of ${path.basename(plugin)}`,
      'supportedVersions is not a list of strings',
    );
  }
  versionCache.set(plugin, { mtimeMs: st.mtimeMs, size: st.size, versions });
  return versions;
}

/** The highest version in `theirs` that we support and that is not newer than `ours`. */
export function commonVersion(ours: CniVersion, theirs: readonly string[]): CniVersion | undefined {
  const ok = theirs.filter((v): v is CniVersion => isSupportedCniVersion(v) && compareCniVersions(v, ours) <= 0);
  return ok.sort(compareCniVersions).pop();
}

/** Outcome of a delegated GC/STATUS: done, or skipped because the delegate is too old. */
export type DelegateOutcome = { skipped?: undefined } | { skipped: string };

export interface IpamCallOptions extends ExecOptions {
  /** Override CNI_PATH (default: the call's CNI_PATH). */
  cniPath?: readonly string[];
}

/** The IPAM section's type, or a CniError 7 when the config has no IPAM. */
function ipamType(conf: NetConf): string {
  if (!conf.ipam)
    throw new CniError(CniErrorCode.InvalidConfig, 'invalid network configuration', 'no ipam section to delegate to');
  return conf.ipam.type;
}

async function prepare(command: Exclude<CniCommand, 'VERSION'>, conf: NetConf, env: CniEnv, opts: IpamCallOptions) {
  const plugin = await findPlugin(ipamType(conf), opts.cniPath ?? env.path);
  const version = commonVersion(conf.cniVersion, await pluginVersions(plugin, opts));
  const childEnv: Record<string, string> = { ...env.raw, CNI_COMMAND: command };
  return { plugin, version, childEnv };
}

function noCommonVersion(plugin: string, conf: NetConf): CniError {
  return new CniError(
    CniErrorCode.IncompatibleVersion,
    `IPAM plugin ${path.basename(plugin)} supports no version up to ${conf.cniVersion}`,
  );
}

/** Delegated ADD: allocates addresses; resolves the IPAM result in the internal model. */
export async function ipamAdd(conf: NetConf, env: CniEnv, opts: IpamCallOptions = {}): Promise<CniResult> {
  const { plugin, version, childEnv } = await prepare('ADD', conf, env, opts);
  if (!version) throw noCommonVersion(plugin, conf);
  const { stdout } = await execPlugin(plugin, childEnv, JSON.stringify(delegateConfig(conf.raw, version)), opts);
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `cannot decode the result of IPAM plugin ${path.basename(plugin)}`,
      (e as Error).message,
    );
  }
  return parseResult(doc, {
    code: CniErrorCode.DecodeFailure,
    what: `result of IPAM plugin ${path.basename(plugin)}`,
    ignoreInterfaceIndexes: true,
  });
}

/**
 * Delegated DEL: releases the addresses. Best effort by design of the callers: the error
 * is thrown, and DEL handlers decide (a missing plugin must not make DEL fail forever).
 */
export async function ipamDel(conf: NetConf, env: CniEnv, opts: IpamCallOptions = {}): Promise<void> {
  const { plugin, version, childEnv } = await prepare('DEL', conf, env, opts);
  if (!version) throw noCommonVersion(plugin, conf);
  const prev = conf.prevResult ? encodeResult(conf.prevResult, version) : undefined;
  await execPlugin(plugin, childEnv, JSON.stringify(delegateConfig(conf.raw, version, prev)), opts);
}

/**
 * Delegated CHECK (needs 0.4.0 at the delegate): passes prevResult re-encoded in the
 * delegate's version (host-local checks its reservations against prevResult's ips).
 */
export async function ipamCheck(conf: NetConf, env: CniEnv, opts: IpamCallOptions = {}): Promise<DelegateOutcome> {
  const { plugin, version, childEnv } = await prepare('CHECK', conf, env, opts);
  if (!version || !versionAtLeast(version, '0.4.0'))
    return { skipped: `${path.basename(plugin)} does not support CHECK` };
  const prev = conf.prevResult ? encodeResult(conf.prevResult, version) : undefined;
  await execPlugin(plugin, childEnv, JSON.stringify(delegateConfig(conf.raw, version, prev)), opts);
  return {};
}

/** Delegated GC (1.1.0 delegates only): forwards `cni.dev/valid-attachments` as received. */
export async function ipamGc(conf: NetConf, env: CniEnv, opts: IpamCallOptions = {}): Promise<DelegateOutcome> {
  const { plugin, version, childEnv } = await prepare('GC', conf, env, opts);
  if (!version || !versionAtLeast(version, '1.1.0'))
    return { skipped: `${path.basename(plugin)} does not support GC (needs CNI 1.1.0)` };
  await execPlugin(plugin, childEnv, JSON.stringify(delegateConfig(conf.raw, version)), opts);
  return {};
}

/** Delegated STATUS (1.1.0 delegates only): the delegate's error (50/51...) is thrown as is. */
export async function ipamStatus(conf: NetConf, env: CniEnv, opts: IpamCallOptions = {}): Promise<DelegateOutcome> {
  const { plugin, version, childEnv } = await prepare('STATUS', conf, env, opts);
  if (!version || !versionAtLeast(version, '1.1.0'))
    return { skipped: `${path.basename(plugin)} does not support STATUS (needs CNI 1.1.0)` };
  await execPlugin(plugin, childEnv, JSON.stringify(delegateConfig(conf.raw, version)), opts);
  return {};
}
