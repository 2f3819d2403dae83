/**
 * The development tools (`vhostplug bench`, `vhostplug demo`) live in src/bench, above
 * the CLI, and are not part of the published package (package.json `files`). The CLI
 * lists them and imports one only when it runs, so an installed package answers with a
 * clear error instead of failing to start.
 */
import { hasCode, UsageError } from '../core/errors';
import type { Command } from './command';

/** Loads a tool's command; a missing module (the published package) is a clear usage error. */
async function load(name: string, loader: () => Promise<Command>): Promise<Command> {
  try {
    return await loader();
  } catch (err) {
    if (hasCode(err, 'MODULE_NOT_FOUND') && /[/\\](bench|sandbox)[/\\]/.test((err as Error).message)) {
      throw new UsageError(
        `"vhostplug ${name}" is a development tool that the published package leaves out; run it from a clone of the repository (npm ci && npm run build)`,
        1,
      );
    }
    throw err;
  }
}

/** A command whose implementation is imported on first use. */
export function toolCommand(name: string, summary: string, loader: () => Promise<Command>): Command {
  return {
    name,
    summary,
    usage: '',
    loadUsage: async (argv) => {
      const cmd = await load(name, loader);
      return cmd.helpFor?.(argv) ?? cmd.usage;
    },
    run: async (argv) => (await load(name, loader)).run(argv),
  };
}
