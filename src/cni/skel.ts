/**
 * The CNI dispatcher: what libcni's `skel.PluginMain` does, for the daemon side of the shim.
 * Given the shim's request (environment + stdin) and a {@link CniPlugin}, it
 *
 *  1. validates the environment (error 4) and answers VERSION itself;
 *  2. decodes the config (6 for size/JSON, 1 for the version, 7 for bad keys) and checks the
 *     command is allowed at that version (CHECK >= 0.4.0, GC/STATUS >= 1.1.0: error 1);
 *  3. calls the plugin's method and encodes ADD's result in the requested cniVersion;
 *  4. turns every failure into the spec's error JSON (in the requested version) + exit 1.
 *
 * A daemon wires it up as:
 *   listenShimSocket(path, (req, ctx) => dispatchCni(req, plugin, ctx))
 */
import { CniErrorCode, toCniError, type CniError } from './errors';
import { parseCniEnv, type CniEnv } from './env';
import { parseNetConf, peekCniVersion, type NetConf, type ParseNetConfOptions } from './netconf';
import { formatResult, type CniResult } from './result';
import type { ShimContext, ShimRequest, ShimResponse } from './shim-protocol';
import {
  assertCommandAllowed,
  CURRENT_CNI_VERSION,
  isSupportedCniVersion,
  versionReply,
  type CniCommand,
} from './spec';

/** One validated CNI call, as a plugin method receives it. */
export interface CniCall {
  readonly command: Exclude<CniCommand, 'VERSION'>;
  readonly env: CniEnv;
  readonly conf: NetConf;
  /** Fires when the shim (and so the runtime) gave up waiting. */
  readonly signal: AbortSignal;
  /** A warning for the operator: sent on the shim's stderr, which the runtime logs. */
  readonly warn?: (message: string) => void;
}

/**
 * The operations a plugin implements. Each throws a CniError (or any error, mapped by
 * {@link toCniError}) on failure. DEL must succeed when things are already gone.
 */
export interface CniPlugin {
  add(call: CniCall): Promise<CniResult>;
  del(call: CniCall): Promise<void>;
  check(call: CniCall): Promise<void>;
  gc(call: CniCall): Promise<void>;
  status(call: CniCall): Promise<void>;
  /**
   * Optional: a DEL whose config cannot be decoded (error 1, 6 or 7). containerd retries a
   * failing DEL forever, and the runtime sends DEL even after a failed ADD, so a plugin that
   * keeps its own per-attachment state should clean up by (containerID, ifname) here and
   * succeed. Without this method the decode error is returned, as skel would.
   */
  delWithoutConfig?(call: UndecodableDel): Promise<void>;
}

/** A DEL whose environment is valid but whose config is not. */
export interface UndecodableDel {
  readonly env: CniEnv;
  /** Why the config was refused. */
  readonly error: CniError;
  readonly signal: AbortSignal;
}

export interface DispatchOptions extends ParseNetConfOptions {
  /** Called with every error answered (for structured logs). */
  onError?: (err: CniError, request: ShimRequest) => void;
}

const never = new AbortController().signal;

/** Config errors a DEL may survive (see {@link CniPlugin.delWithoutConfig}). */
const CONFIG_CODES = new Set<number>([
  CniErrorCode.IncompatibleVersion,
  CniErrorCode.DecodeFailure,
  CniErrorCode.InvalidConfig,
]);

/** Handles one CNI call end to end; never throws. */
export async function dispatchCni(
  request: ShimRequest,
  plugin: CniPlugin,
  ctx?: Partial<ShimContext>,
  opts: DispatchOptions = {},
): Promise<ShimResponse> {
  // Errors are worded in the config's version when it is one we speak (spec: echo it).
  const peeked = peekCniVersion(request.stdin);
  let replyVersion = peeked !== undefined && isSupportedCniVersion(peeked) ? peeked : CURRENT_CNI_VERSION;
  try {
    const env = parseCniEnv(request.env);
    if (env.command === 'VERSION') return { exitCode: 0, stdout: JSON.stringify(versionReply(peeked)) };
    let conf: NetConf;
    try {
      conf = parseNetConf(request.stdin, opts);
    } catch (err) {
      const e = toCniError(err);
      if (env.command !== 'DEL' || !plugin.delWithoutConfig || !CONFIG_CODES.has(e.cniCode)) throw e;
      opts.onError?.(e, request);
      await plugin.delWithoutConfig({ env, error: e, signal: ctx?.signal ?? never });
      return { exitCode: 0, stdout: '' };
    }
    replyVersion = conf.cniVersion;
    assertCommandAllowed(env.command, conf.cniVersion);
    const warnings: string[] = [];
    const call: CniCall = {
      command: env.command,
      env,
      conf,
      signal: ctx?.signal ?? never,
      warn: (m) => warnings.push(`vhostplug: warning: ${m}\n`),
    };
    switch (env.command) {
      case 'ADD': {
        const stdout = formatResult(await plugin.add(call), conf.cniVersion);
        return warnings.length ? { exitCode: 0, stdout, stderr: warnings.join('') } : { exitCode: 0, stdout };
      }
      case 'DEL':
        await plugin.del(call);
        break;
      case 'CHECK':
        await plugin.check(call);
        break;
      case 'GC':
        await plugin.gc(call);
        break;
      case 'STATUS':
        await plugin.status(call);
        break;
    }
    return { exitCode: 0, stdout: '' };
  } catch (err) {
    const e = toCniError(err);
    opts.onError?.(e, request);
    return { exitCode: 1, stdout: e.format(replyVersion) };
  }
}
