// `fastpaca health`: asks a node on this machine whether it is alive (GET /health/live) or ready
// (GET /health/ready, with --ready) and exits 0 only on a 200. It is the container's HEALTHCHECK:
// the runtime image holds the fastpaca binary and no curl, so the binary checks itself.
import type { Argv } from 'yargs';
import { exitCodes } from './exit-codes.js';

export interface HealthCommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The node's own address: loopback on $PORT (the port `serve` listens on), else 4000. */
export const defaultHealthUrl = (env: Readonly<Record<string, string | undefined>>): string => {
  const port = env['PORT'];
  return `http://127.0.0.1:${port !== undefined && /^\d{1,5}$/.test(port) ? port : '4000'}`;
};

/** The `health` command's options. */
export const healthOptions = <T>(command: Argv<T>) =>
  command
    .usage('$0 health [options]\n\nExit 0 when the node answers its health endpoint with 200, 1 otherwise.')
    .option('url', {
      type: 'string',
      describe: "The node's HTTP address (default: http://127.0.0.1:$PORT, or port 4000)",
    })
    .option('ready', {
      type: 'boolean',
      default: false,
      describe: 'Check /health/ready (joined, every hosted group has a leader) instead of /health/live',
    })
    .option('timeout', { type: 'number', default: 3_000, describe: 'Milliseconds to wait for the answer' })
    .epilog('Exit codes: 0 healthy; 1 unhealthy or unreachable; 2 invalid command line.')
    .check((argv) => {
      const timeout = argv.timeout;
      if (!Number.isInteger(timeout) || timeout < 1 || timeout > 600_000) {
        throw new Error('--timeout must be an integer from 1 to 600000 (milliseconds)');
      }
      return true;
    });

/** The work of `health` for the parsed flags. */
export const healthWork =
  (argv: Readonly<Record<string, unknown>>, io: HealthCommandIo) => (): Promise<number> =>
    runHealth(
      {
        url: typeof argv['url'] === 'string' ? argv['url'] : defaultHealthUrl(io.env),
        ready: argv['ready'] === true,
        timeoutMs: typeof argv['timeout'] === 'number' ? argv['timeout'] : 3_000,
      },
      io,
    );

/** One request to the health endpoint; exit 0 on a 200. */
export const runHealth = async (
  options: { readonly url: string; readonly ready: boolean; readonly timeoutMs: number },
  io: HealthCommandIo,
): Promise<number> => {
  const path = options.ready ? '/health/ready' : '/health/live';
  const target = `${options.url.replace(/\/+$/, '')}${path}`;
  try {
    const response = await fetch(target, { signal: AbortSignal.timeout(options.timeoutMs) });
    const body = (await response.text()).slice(0, 500);
    if (response.status === 200) {
      io.stdout(`${target}: ${body}\n`);
      return exitCodes.ok;
    }
    io.stderr(`fastpaca: ${target} answered ${response.status}: ${body}\n`);
  } catch (error) {
    io.stderr(`fastpaca: ${target} unreachable: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return exitCodes.failure;
};
