// `node dist/bench/main.js <scenario> ...` (and `npm run bench -- <scenario>`): an alias of
// `fastpaca bench <scenario> ...`, kept for the commands people already type.
import { hideBin } from 'yargs/helpers';
import { runCliAlias } from './cli-alias.js';

runCliAlias(['bench', ...hideBin(process.argv)]);
