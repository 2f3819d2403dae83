/** A `vhostplug` subcommand: its name, one-line summary, --help text and entry point. */
export interface Command {
  name: string;
  summary: string;
  /** The --help text; a lazily loaded command has `loadUsage` instead. */
  usage: string;
  loadUsage?(): Promise<string>;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** An error that the CLI prints as one clear line (no stack) and exits with `exitCode`. */
export { UsageError } from '../core/errors';
