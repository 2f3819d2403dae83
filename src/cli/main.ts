#!/usr/bin/env node
/**
 * The `vhostplug` command line: one binary, one subcommand per job.
 */
import { errorCode } from '../core/errors';
import type { Command } from './command';
import { UsageError } from './command';
import { commands } from './commands';

function topUsage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: vhostplug <command> [options]',
    '',
    'vhost-user and veth ports for Kubernetes pods on Open vSwitch with a DPDK datapath.',
    '',
    'commands:',
    ...lines,
    '',
    'Run "vhostplug <command> --help" for the options of a command.',
  ].join('\n');
}

function errorLine(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  if (err instanceof Error) {
    const code = errorCode(err);
    return code !== undefined && !err.message.startsWith(code) ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topUsage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    process.stdout.write(`${(require('../../package.json') as { version: string }).version}\n`);
    return 0;
  }
  const cmd: Command | undefined = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`vhostplug: unknown command "${name}"\n\n${topUsage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    try {
      const text = cmd.loadUsage ? await cmd.loadUsage(rest) : (cmd.helpFor?.(rest) ?? cmd.usage);
      process.stdout.write(text.trim() + '\n');
    } catch (err) {
      process.stderr.write(`vhostplug ${name}: ${errorLine(err)}\n`);
      return err instanceof UsageError ? err.exitCode : 1;
    }
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    process.stderr.write(`vhostplug ${name}: ${errorLine(err)}\n`);
    if (err instanceof UsageError) return err.exitCode;
    if (process.env.VHOSTPLUG_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`vhostplug: ${errorLine(err)}\n`);
      process.exitCode = 1;
    },
  );
}
