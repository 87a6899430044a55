// `node dist/bench/cluster-bench.js ...` (and `npm run bench:cluster`): an alias of
// `fastpaca bench cluster ...`, kept for the commands people already type.
import { hideBin } from 'yargs/helpers';
import { runCliAlias } from './cli-alias.js';

runCliAlias(['bench', 'cluster', ...hideBin(process.argv)]);
