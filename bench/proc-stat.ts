// What the benches read of a process from /proc (Linux): its parent and the CPU it has used, so a
// node's cost can be told apart from the load generator's (and a database's) on a shared machine.

import { readFileSync, readdirSync } from 'node:fs';

/** A process's parent pid and CPU seconds (user + system) so far, from /proc (Linux). */
const processStat = (pid: number): { readonly parent: number; readonly cpuSeconds: number } => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3; the parent is
  // field 4, utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { parent: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 };
};

/** CPU seconds a process has used so far. */
export const cpuSeconds = (pid: number): number => processStat(pid).cpuSeconds;

/**
 * CPU seconds of a process and its live children (a PostgreSQL server: backends, WAL writer,
 * checkpointer). A child that exited is no longer counted, so a difference is a lower bound.
 */
export const processTreeCpuSeconds = (pid: number): number => {
  let total = cpuSeconds(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = processStat(Number(entry));
      if (stat.parent === pid) total += stat.cpuSeconds;
    } catch {
      // It exited while we looked.
    }
  }
  return total;
};
