/** The registry of subcommands, in the order `--help` lists them. */
import type { Command } from './command';
import { plugCommand, unplugCommand } from './plug';
import { benchCommand } from './bench';
import { demoCommand } from './demo';
import { kuryrDaemonCommand } from './kuryr-daemon';
import { daemonCommand } from './daemon';
import { installCniCommand } from './install-cni';
import { podInfoCommand } from './pod-info';

export const commands: Command[] = [demoCommand, plugCommand, unplugCommand, benchCommand, kuryrDaemonCommand, daemonCommand, installCniCommand, podInfoCommand];
