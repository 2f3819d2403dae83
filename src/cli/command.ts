/** A `vhostplug` subcommand: its name, one-line summary, --help text and entry point. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** An error that the CLI prints as one clear line (no stack) and exits with `exitCode`. */
export class UsageError extends Error {
  readonly code = 'EUSAGE';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}
