/**
 * Small process helpers for tests: run a command and get its stdout or a useful error,
 * check whether a pid is alive (zombie-aware), poll for a condition.
 */
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** An external command that failed: carries its argv, exit status and stderr. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly status: number | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly signal: string | null = null,
  ) {
    const why = signal ? `killed by ${signal}` : `exit ${status}`;
    super(`${argv.join(' ')} failed (${why})${stderr.trim() ? `:\n${stderr.trim()}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the command is killed (default 30 s). */
  timeout?: number;
  input?: string;
}

/** Runs a command synchronously; returns its stdout, throws CommandError on failure. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): string {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      env: opts.env ?? process.env,
      timeout: opts.timeout ?? 30_000,
      input: opts.input,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string };
    throw new CommandError(
      [file, ...args],
      err.status ?? null,
      String(err.stdout ?? ''),
      String(err.stderr ?? ''),
      err.signal ?? null,
    );
  }
}

/** Runs a command without blocking the event loop (clients under test keep running). */
export function runAsync(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeout ?? 30_000, maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          reject(new CommandError([file, ...args], code, stdout, stderr, error.signal ?? null));
        } else {
          resolve(stdout);
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * True unless the process is gone or a zombie. PID 1 on these machines reaps only every ~2 s,
 * so `kill(pid, 0)` keeps succeeding for a dead daemon; /proc/PID/stat state `Z` is the truth.
 */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Field 3 follows the parenthesised comm, which may itself contain spaces or ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Reads a pidfile; undefined when it is missing or malformed. */
export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Polls `cond` every `intervalMs` until it returns a truthy value; throws with `what` on timeout. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The full path of an executable (absolute name, or found on PATH), or undefined. */
export function which(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // keep looking
    }
  }
  return undefined;
}
