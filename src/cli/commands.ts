/** The registry of subcommands, in the order `--help` lists them. */
import type { Command } from './command';
import { plugCommand, unplugCommand } from './plug';
import { benchCommand } from './bench';

export const commands: Command[] = [plugCommand, unplugCommand, benchCommand];
