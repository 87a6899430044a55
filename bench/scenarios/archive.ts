// The archiver's cost: the single-node append load with the archiver off and on, alternating on
// fresh nodes (bench/archive-bench.ts), against an embedded PostgreSQL started here or --database-url.
import { freePort } from '../local-nodes.js';

import { archiveComparison } from '../archive-bench.js';
import { numberFlag, type Scenario } from '../scenario.js';

export const archiveScenario: Scenario = {
  name: 'archive',
  describe: 'Appends with the archiver off, then on (fresh nodes, alternating): loss, rows/s archived, lag',
  help:
    'Runs the append load on a fresh node without an archive, then on a fresh node archiving to PostgreSQL, ' +
    '--runs times, and reports the medians: appends/s each way, the loss, the node CPU per 1,000 appends, ' +
    'the rows archived per second and the archive lag (fastpaca_archive_pending_rows) over the run, and what ' +
    "a shared machine adds to the loss: the node's mean fsync each way and the embedded PostgreSQL's CPU. " +
    'PostgreSQL is an embedded one started here unless --database-url names one.',
  spawn: { default: 1, ownNodes: true },
  options: {
    runs: { type: 'number', default: 3, describe: 'Off/on pairs' },
    'database-url': { type: 'string', describe: 'Archive here instead of an embedded PostgreSQL' },
  },
  run: async (context) => {
    const databaseUrl = context.flags['database-url'];
    const numbers = await context.withProgress('archive', async () =>
      archiveComparison({
        connections: context.options.connections,
        durationS: context.options.durationS,
        runs: numberFlag(context, 'runs'),
        messageBytes: context.options.messageBytes,
        apiKey: context.options.apiKey,
        databaseUrl: typeof databaseUrl === 'string' && databaseUrl !== '' ? databaseUrl : undefined,
        postgresPort: await freePort(),
        log: (line) => context.log(line),
      }),
    );
    return numbers;
  },
};
