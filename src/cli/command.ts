/** A `vhostplug` subcommand: its name, one-line summary, --help text and entry point. */
export interface Command {
  name: string;
  summary: string;
  /** The --help text; a lazily loaded command has `loadUsage` instead. */
  usage: string;
  loadUsage?(argv: string[]): Promise<string>;
  /** The --help text for these arguments when it depends on them (a subcommand's own usage). */
  helpFor?(argv: string[]): string | undefined;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** An error that the CLI prints as one clear line (no stack) and exits with `exitCode`. */
export { UsageError } from '../core/errors';
