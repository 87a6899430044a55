// The process exit codes of the fastpaca binary, so scripts and supervisors can tell a bad
// configuration (fix it, do not restart in a loop) from a runtime failure (restart may help).
export const exitCodes = {
  /** Success, including a graceful shutdown after SIGTERM/SIGINT. */
  ok: 0,
  /** Runtime failure: the node could not start, or a graceful shutdown failed or timed out. */
  failure: 1,
  /** Invalid command line or configuration (unknown flag, bad value, unreadable config file). */
  usage: 2,
} as const;

/** A second signal during shutdown exits at once with the shell's convention, 128 + signal number. */
export const signalExitCode = (signal: NodeJS.Signals): number => (signal === 'SIGINT' ? 130 : 143);
