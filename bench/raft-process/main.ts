// Entry point of the raft process (dist/bench/raft-process/main.js): starts a RaftNode and its control
// server, then prints ONE line to stdout, {"event":"ready","nodeId",...,"raftPort","httpPort"}, which
// is how a parent learns the bound ports. Logs go to stderr. SIGTERM/SIGINT close it in order; a
// storage failure (onFatal) exits at once with code 1, as the host's contract requires.

import { startControlServer } from './control-server.js';
import { parseProcessArgs, type ProcessOptions } from './args.js';
import { startRaftNode } from './raft-node.js';

const log = (message: string): void => {
  process.stderr.write(`[raft-process ${process.pid}] ${message}\n`);
};

const main = async (): Promise<void> => {
  let options: ProcessOptions;
  try {
    options = parseProcessArgs(process.argv.slice(2), process.env);
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  const node = await startRaftNode({
    ...options.node,
    onFatal: (error) => {
      log(`fatal: ${error.stack ?? error.message}`);
      process.exit(1);
    },
  });
  const control = await startControlServer(node, options.httpPort);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: closing`);
    void control
      .close()
      .then(() => node.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log(`close failed: ${String(error)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', nodeId: node.nodeId, pid: process.pid, raftPort: node.raftPort(), httpPort: control.port })}\n`,
  );
};

main().catch((error: unknown) => {
  log(`failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
