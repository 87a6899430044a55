// Rules that involve more than one option, checked once every option is valid on its own.
import type { Config } from './config.js';
import { ConfigError } from './config-error.js';
import type { OptionKey } from './options.js';

/** Describes an option's value and source for a message, e.g. "FASTPACA_ARCHIVER_ENABLED=true (env)". */
export type DescribeOption = (key: OptionKey) => string;

export const checkCrossOptionRules = (config: Config, describe: DescribeOption): void => {
  if (config.archiverEnabled && config.databaseUrl === undefined) {
    fail('archiverEnabled', `${describe('archiverEnabled')}: requires DATABASE_URL (or --database-url)`);
  }
  if (config.raftHeartbeatTicks >= config.raftElectionTicks) {
    fail(
      'raftHeartbeatTicks',
      `${describe('raftHeartbeatTicks')}: must be less than raft election ticks, ${describe('raftElectionTicks')}`,
    );
  }
  if (config.raftLogRetainBytes < config.raftInflightBytesMax) {
    // A follower taking appends at full speed is up to the inflight window behind: a log compacted
    // below that would send it snapshot after snapshot.
    fail(
      'raftLogRetainBytes',
      `${describe('raftLogRetainBytes')}: must be at least the raft inflight bytes, ${describe('raftInflightBytesMax')}`,
    );
  }
  if (config.httpBufferedBytesMax < config.bodyLimitBytes) {
    // Otherwise a body within the limit could never be accepted.
    fail(
      'httpBufferedBytesMax',
      `${describe('httpBufferedBytesMax')}: must be at least the body limit, ${describe('bodyLimitBytes')}`,
    );
  }
  if (config.port !== 0 && config.port === config.raftPort) {
    fail('raftPort', `${describe('raftPort')}: must differ from the HTTP port, ${describe('port')}`);
  }
};

const fail = (option: OptionKey, message: string): never => {
  throw new ConfigError(message, { option });
};
