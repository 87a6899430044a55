// Every configuration option, in one table: its value kind (schema), environment variable, CLI flag,
// TOML key, default and one-line documentation. The loader, the CLI's flags and --help, and
// config.sample.toml are all generated from this table, so they cannot drift apart.
import { availableParallelism } from 'node:os';
import { clusterSeed } from './cluster-seed.js';
import { boolean, integer, oneOf, stringList, text, type OptionKind } from './option-kinds.js';
import { parseEstimatorSpec } from '../tokens/estimator-spec.js';

export interface OptionSpec<K extends OptionKind = OptionKind> {
  readonly kind: K;
  readonly env: string;
  /** Kebab-case flag name without dashes, e.g. "raft-port". */
  readonly flag: string;
  /** Dotted TOML path, e.g. "archiver.batch_size" (a key in the [archiver] table). */
  readonly toml: string;
  /** One sentence for --help and the sample file. */
  readonly doc: string;
  /** The default, when it is a constant. */
  readonly default?: unknown;
  /** How the default is computed from other options (see derive-defaults.ts), for documentation. */
  readonly derivedDefault?: string;
  /** Never echoed in errors or logs. */
  readonly secret?: boolean;
  /** Optional options may stay unset (no default). */
  readonly optional?: boolean;
  /** A value for the sample file when there is no constant default (TOML form). */
  readonly example?: unknown;
}

const MiB = 1024 * 1024;

// `const` keeps each option's literal shape (its schema type, `optional: true`) for the Config type.
const spec = <const O extends OptionSpec>(option: O): O => option;

/** Node identities travel in Raft messages and LevelDB keys: keep them short and printable. */
const nodeNamePattern = '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$';

const checkEstimator = (value: unknown): string | undefined => {
  if (typeof value !== 'string') return undefined;
  const parsed = parseEstimatorSpec(value);
  return parsed.ok ? undefined : parsed.problem;
};

/** One tokenizer worker per core not taken by the event loop, at least 1 and at most 4. */
export const defaultTokenizerWorkers = (): number => Math.min(4, Math.max(1, availableParallelism() - 1));

export const options = {
  // --- server
  port: spec({
    kind: integer(0, 65535),
    env: 'PORT',
    flag: 'port',
    toml: 'port',
    default: 4000,
    doc: 'HTTP port for REST, websockets, health and metrics (0 picks a free port).',
  }),
  raftPort: spec({
    kind: integer(0, 65535),
    env: 'FASTPACA_RAFT_PORT',
    flag: 'raft-port',
    toml: 'raft_port',
    derivedDefault: 'port + 1000 (5000 with the default port; 0 when port is 0)',
    example: 5000,
    doc: 'gRPC port for Raft traffic between nodes; peers reach it at the same host as the HTTP port.',
  }),
  host: spec({
    kind: text({ maxLength: 255, pattern: '^\\S+$', expect: 'a host name or IP address to listen on' }),
    env: 'FASTPACA_HOST',
    flag: 'host',
    toml: 'host',
    default: '0.0.0.0',
    doc: 'Address the HTTP and Raft listeners bind to.',
  }),
  dataDir: spec({
    kind: text({ maxLength: 4096, expect: 'a directory path' }),
    env: 'FASTPACA_RAFT_DATA_DIR',
    flag: 'data-dir',
    toml: 'data_dir',
    default: 'priv/raft',
    doc: 'Directory for the Raft log, snapshots and the node identity (relative paths: from the working directory).',
  }),
  nodeName: spec({
    kind: text({
      maxLength: 128,
      pattern: nodeNamePattern,
      expect: 'a node name of 1-128 letters, digits and ._:@-',
    }),
    env: 'FASTPACA_NODE_NAME',
    flag: 'node-name',
    toml: 'node_name',
    optional: true,
    derivedDefault: 'a random UUID, persisted in <data_dir>/node-name so a restart is the same node',
    example: 'node-1',
    doc: "This node's stable identity in the cluster.",
  }),
  logLevel: spec({
    kind: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    env: 'FASTPACA_LOG_LEVEL',
    flag: 'log-level',
    toml: 'log_level',
    default: 'info',
    doc: 'Minimum level of the JSON log lines written to stdout.',
  }),
  bodyLimitBytes: spec({
    // At most 64 MiB: a body's log entry (up to ~3x its size) must fit one frame (consensus.ts).
    kind: integer(1024, 64 * MiB),
    env: 'FASTPACA_BODY_LIMIT_BYTES',
    flag: 'body-limit-bytes',
    toml: 'body_limit_bytes',
    default: MiB,
    doc: 'Largest accepted request body; larger bodies get 413 payload_too_large.',
  }),
  httpInflightRequestsMax: spec({
    kind: integer(1, 1_000_000),
    env: 'FASTPACA_HTTP_INFLIGHT_REQUESTS_MAX',
    flag: 'http-inflight-requests-max',
    toml: 'http.inflight_requests_max',
    default: 10_000,
    doc: 'Requests in flight on this node; further /v1 requests get 503 overloaded with Retry-After.',
  }),
  httpBufferedBytesMax: spec({
    kind: integer(1024, 16 * 1024 * MiB),
    env: 'FASTPACA_HTTP_BUFFERED_BYTES_MAX',
    flag: 'http-buffered-bytes-max',
    toml: 'http.buffered_bytes_max',
    default: 256 * MiB,
    doc: 'Request-body bytes held in memory by requests in flight, and answers over 1 Mi characters not yet taken by their clients; past it, 503 overloaded. At least body_limit_bytes.',
  }),
  httpFdReserve: spec({
    kind: integer(16, 1_000_000),
    env: 'FASTPACA_HTTP_FD_RESERVE',
    flag: 'http-fd-reserve',
    toml: 'http.fd_reserve',
    default: 1024,
    doc: 'File descriptors kept free for storage and peers (at most a quarter of ulimit -n): while fewer are free, every request is answered with its connection closed, /v1 with 503 overloaded.',
  }),
  diskFreeMinBytes: spec({
    kind: integer(0, 1024 * 1024 * MiB),
    env: 'FASTPACA_DISK_FREE_MIN_BYTES',
    flag: 'disk-free-min-bytes',
    toml: 'raft.disk_free_min_bytes',
    default: 256 * MiB,
    doc: "Free bytes on the data directory's file system below which writes are refused (507, or 503 for a leader), before the store fails; 0 turns the check off.",
  }),
  readPageBytesMax: spec({
    kind: integer(64 * 1024, 1024 * MiB),
    env: 'FASTPACA_READ_PAGE_BYTES_MAX',
    flag: 'read-page-bytes-max',
    toml: 'http.read_page_bytes_max',
    default: 16 * MiB,
    doc: 'Stored message bytes one read gathers (tail, export page, LLM window) before it stops and says how to continue; at least one message is always returned.',
  }),
  httpBodyTimeoutMs: spec({
    kind: integer(100, 3_600_000),
    env: 'FASTPACA_HTTP_BODY_TIMEOUT_MS',
    flag: 'http-body-timeout-ms',
    toml: 'http.body_timeout_ms',
    default: 30_000,
    doc: 'Time for a request body to arrive whole; a slower one gets 408 request_timeout and its connection is closed.',
  }),
  shutdownTimeoutMs: spec({
    kind: integer(0, 600_000),
    env: 'FASTPACA_SHUTDOWN_TIMEOUT_MS',
    flag: 'shutdown-timeout-ms',
    toml: 'shutdown_timeout_ms',
    default: 25_000,
    doc: 'On SIGTERM/SIGINT, the grace period: refuse new requests, hand leadership away, finish requests in flight and close, or exit 1 when it runs out.',
  }),
  apiKeys: spec({
    kind: stringList('a comma-separated list of API keys without spaces'),
    env: 'FASTPACA_API_KEY',
    flag: 'api-key',
    toml: 'api_keys',
    default: [],
    secret: true,
    doc: 'Bearer keys accepted on /v1 (several for rotation); empty disables auth (a warning is logged).',
  }),

  ratePerKey: spec({
    kind: integer(0, 1_000_000),
    env: 'FASTPACA_RATE_PER_KEY',
    flag: 'rate-per-key',
    toml: 'http.rate_per_key',
    default: 0,
    doc: 'Requests per second each API key may make on this node (429 rate_limited with Retry-After past it); 0: no limit.',
  }),
  rateBurst: spec({
    kind: integer(1, 10_000_000),
    env: 'FASTPACA_RATE_BURST',
    flag: 'rate-burst',
    toml: 'http.rate_burst',
    derivedDefault: 'rate_per_key (one second of requests), at least 1',
    example: 100,
    doc: 'Requests an API key may make at once after a quiet spell, when rate_per_key is set.',
  }),
  protectedMode: spec({
    kind: boolean(),
    env: 'FASTPACA_PROTECTED_MODE',
    flag: 'protected-mode',
    toml: 'protected_mode',
    default: true,
    doc: 'Without an API key, serve /v1 to clients on this machine only (loopback); false serves an open API to the network.',
  }),

  // --- cluster
  clusterSeed: spec({
    kind: clusterSeed(),
    env: 'FASTPACA_CLUSTER_SEED',
    flag: 'cluster-seed',
    toml: 'cluster.seed',
    default: [],
    example: ['node-1.internal:4000', 'node-2.internal:4000', 'node-3.internal:4000'],
    doc: "Peers' HTTP addresses as host:port (comma-separated), or one DNS name resolving to every node; empty runs a single node.",
  }),
  clusterSecret: spec({
    kind: text({ minLength: 16, maxLength: 1024, expect: 'a secret of at least 16 characters' }),
    env: 'FASTPACA_CLUSTER_SECRET',
    flag: 'cluster-secret',
    toml: 'cluster.secret',
    optional: true,
    secret: true,
    example: 'a-long-random-string-shared-by-all-nodes',
    doc: 'Shared secret authenticating Raft traffic between nodes (strongly recommended with a seed).',
  }),
  tlsDir: spec({
    kind: text({ maxLength: 4096, expect: 'a directory path' }),
    env: 'FASTPACA_TLS_DIR',
    flag: 'tls-dir',
    toml: 'tls.dir',
    optional: true,
    example: '/etc/fastpaca/tls',
    doc: "Directory with this node's tls.crt and tls.key (PEM; a Kubernetes TLS secret's layout) and the cluster's ca.crt: the HTTP port serves HTTPS, and nodes talk mutual TLS verified against ca.crt (required in a cluster).",
  }),
  expectedClusterSize: spec({
    kind: integer(1, 128),
    env: 'FASTPACA_EXPECTED_CLUSTER_SIZE',
    flag: 'expected-cluster-size',
    toml: 'cluster.expected_size',
    derivedDefault: '3 when a seed is given, else 1',
    example: 3,
    doc: 'Nodes to wait for before the first bootstrap of the Raft groups.',
  }),

  // --- tokens
  tokenEstimator: spec({
    kind: text({ maxLength: 128, expect: '"chars4" or "tiktoken:<model>"', check: checkEstimator }),
    env: 'FASTPACA_TOKEN_ESTIMATOR',
    flag: 'token-estimator',
    toml: 'tokens.estimator',
    default: 'tiktoken:gpt-4o',
    doc: 'How token counts are estimated when a client sends none: tiktoken:<model> (exact) or chars4.',
  }),
  tokenizerWorkers: spec({
    kind: integer(1, 32),
    env: 'FASTPACA_TOKENIZER_WORKERS',
    flag: 'tokenizer-workers',
    toml: 'tokens.workers',
    derivedDefault: 'CPU count - 1, between 1 and 4',
    example: 1,
    doc: 'Worker threads counting tokens off the event loop (tiktoken estimators only).',
  }),
  tokenizerQueueMax: spec({
    kind: integer(1, 10_000_000),
    env: 'FASTPACA_TOKENIZER_QUEUE_MAX',
    flag: 'tokenizer-queue-max',
    toml: 'tokens.queue_max',
    default: 100_000,
    doc: 'Message parts waiting for a tokenizer worker before appends are refused with 503 overloaded.',
  }),
  tokenizerBatchTimeoutMs: spec({
    kind: integer(50, 600_000),
    env: 'FASTPACA_TOKENIZER_BATCH_TIMEOUT_MS',
    flag: 'tokenizer-batch-timeout-ms',
    toml: 'tokens.batch_timeout_ms',
    default: 2000,
    doc: 'Time a tokenizer worker may spend on one batch before it is replaced; the text it was counting gets the chars4 estimate.',
  }),

  // --- streams and contexts
  streamMaxConnections: spec({
    kind: integer(0, 1_000_000),
    env: 'FASTPACA_STREAM_MAX_CONNECTIONS',
    flag: 'stream-max-connections',
    toml: 'stream.max_connections',
    default: 512,
    doc: 'Websocket and SSE subscribers per node; further upgrades get 503.',
  }),
  streamPingIntervalMs: spec({
    kind: integer(50, 3_600_000),
    env: 'FASTPACA_STREAM_PING_INTERVAL_MS',
    flag: 'stream-ping-interval-ms',
    toml: 'stream.ping_interval_ms',
    default: 30_000,
    doc: 'Interval between the ping frames a live stream sends.',
  }),
  streamIdleTimeoutMs: spec({
    kind: integer(100, 3_600_000),
    env: 'FASTPACA_STREAM_IDLE_TIMEOUT_MS',
    flag: 'stream-idle-timeout-ms',
    toml: 'stream.idle_timeout_ms',
    default: 90_000,
    doc: 'A websocket subscriber that sends no frame (a pong or anything else) for this long is closed with 4001.',
  }),
  streamBufferBytesMax: spec({
    kind: integer(1024, 1024 * MiB),
    env: 'FASTPACA_STREAM_BUFFER_BYTES_MAX',
    flag: 'stream-buffer-bytes-max',
    toml: 'stream.buffer_bytes_max',
    default: MiB,
    doc: 'Bytes a live subscriber may leave unread, and a quarter of the new events held for it during its replay; past either, it is closed with 4000 (slow consumer) and resumes from its cursor.',
  }),
  tailKeep: spec({
    kind: integer(1, 100_000_000),
    env: 'FASTPACA_TAIL_KEEP',
    flag: 'tail-keep',
    toml: 'context.tail_keep',
    default: 1000,
    doc: 'Messages per context kept in the Raft tail after archiving (never trims unarchived messages).',
  }),

  // --- archiver
  archiverEnabled: spec({
    kind: boolean(),
    env: 'FASTPACA_ARCHIVER_ENABLED',
    flag: 'archiver-enabled',
    toml: 'archiver.enabled',
    default: false,
    doc: 'Archive messages to Postgres (requires database_url) so the Raft tail can be trimmed.',
  }),
  databaseUrl: spec({
    kind: text({
      maxLength: 4096,
      pattern: '^postgres(ql)?://\\S+$',
      expect: 'a postgres:// or postgresql:// URL',
    }),
    env: 'DATABASE_URL',
    flag: 'database-url',
    toml: 'archiver.database_url',
    optional: true,
    secret: true,
    example: 'postgres://fastpaca:password@localhost:5432/fastpaca',
    doc: 'Postgres connection URL for the archiver.',
  }),
  archiveFlushIntervalMs: spec({
    kind: integer(10, 3_600_000),
    env: 'FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS',
    flag: 'archive-flush-interval-ms',
    toml: 'archiver.flush_interval_ms',
    default: 5000,
    doc: 'How often the archiver flushes pending messages to Postgres.',
  }),
  archiverBatchSize: spec({
    kind: integer(1, 1_000_000),
    env: 'FASTPACA_ARCHIVER_BATCH_SIZE',
    flag: 'archiver-batch-size',
    toml: 'archiver.batch_size',
    default: 5000,
    doc: 'Rows per archiver insert.',
  }),
  migrateOnBoot: spec({
    kind: boolean(),
    env: 'MIGRATE_ON_BOOT',
    flag: 'migrate-on-boot',
    toml: 'archiver.migrate_on_boot',
    derivedDefault: 'true when the archiver is enabled, else false',
    example: true,
    doc: "Run the archive's schema migrations at start-up.",
  }),

  // --- raft
  raftTickMs: spec({
    kind: integer(1, 10_000),
    env: 'FASTPACA_RAFT_TICK_MS',
    flag: 'raft-tick-ms',
    toml: 'raft.tick_ms',
    default: 100,
    doc: 'Length of one Raft tick; election and heartbeat timeouts are counted in ticks.',
  }),
  raftElectionTicks: spec({
    kind: integer(2, 1000),
    env: 'FASTPACA_RAFT_ELECTION_TICKS',
    flag: 'raft-election-ticks',
    toml: 'raft.election_ticks',
    default: 10,
    doc: 'Ticks without a leader before a follower campaigns (randomised up to twice this).',
  }),
  raftHeartbeatTicks: spec({
    kind: integer(1, 500),
    env: 'FASTPACA_RAFT_HEARTBEAT_TICKS',
    flag: 'raft-heartbeat-ticks',
    toml: 'raft.heartbeat_ticks',
    default: 1,
    doc: 'Ticks between leader heartbeats; must be less than election_ticks.',
  }),
  raftPipelineWrites: spec({
    kind: boolean(),
    env: 'FASTPACA_RAFT_PIPELINE_WRITES',
    flag: 'raft-pipeline-writes',
    toml: 'raft.pipeline_writes',
    default: false,
    doc: 'Overlap the next Raft turn with the fsync in flight (answers still wait for it); false waits per turn.',
  }),
  raftPreVote: spec({
    kind: boolean(),
    env: 'FASTPACA_RAFT_PRE_VOTE',
    flag: 'raft-pre-vote',
    toml: 'raft.pre_vote',
    default: true,
    doc: 'Pre-vote: a node that was partitioned away does not disrupt the cluster when it returns.',
  }),
  raftCheckQuorum: spec({
    kind: boolean(),
    env: 'FASTPACA_RAFT_CHECK_QUORUM',
    flag: 'raft-check-quorum',
    toml: 'raft.check_quorum',
    default: true,
    doc: 'A leader that loses contact with a quorum steps down.',
  }),
  raftProposalTimeoutMs: spec({
    kind: integer(10, 600_000),
    env: 'FASTPACA_RAFT_PROPOSAL_TIMEOUT_MS',
    flag: 'raft-proposal-timeout-ms',
    toml: 'raft.proposal_timeout_ms',
    default: 5000,
    doc: 'How long a write or linearizable read waits for Raft before 503 raft_timeout.',
  }),
  raftProposalQueueMax: spec({
    kind: integer(1, 10_000_000),
    env: 'FASTPACA_RAFT_PROPOSAL_QUEUE_MAX',
    flag: 'raft-proposal-queue-max',
    toml: 'raft.proposal_queue_max',
    default: 20_000,
    doc: 'Proposals queued but not yet handed to a group, across all groups (then 503 overloaded).',
  }),
  raftPendingProposalsMax: spec({
    kind: integer(1, 10_000_000),
    env: 'FASTPACA_RAFT_PENDING_PROPOSALS_MAX',
    flag: 'raft-pending-proposals-max',
    toml: 'raft.pending_proposals_max',
    default: 50_000,
    doc: "Proposals in a group's log but not yet applied, across all groups.",
  }),
  raftInboundQueueMax: spec({
    kind: integer(1, 10_000_000),
    env: 'FASTPACA_RAFT_INBOUND_QUEUE_MAX',
    flag: 'raft-inbound-queue-max',
    toml: 'raft.inbound_queue_max',
    default: 100_000,
    doc: 'Raft messages from peers queued for the next loop turn.',
  }),
  raftInflightBytesMax: spec({
    kind: integer(1024, 1024 * MiB),
    env: 'FASTPACA_RAFT_INFLIGHT_BYTES_MAX',
    flag: 'raft-inflight-bytes-max',
    toml: 'raft.inflight_bytes_max',
    default: 4 * MiB,
    doc: 'Per follower and group: entry bytes sent but not yet acknowledged.',
  }),
  raftInflightMsgsMax: spec({
    kind: integer(1, 100_000),
    env: 'FASTPACA_RAFT_INFLIGHT_MSGS_MAX',
    flag: 'raft-inflight-msgs-max',
    toml: 'raft.inflight_msgs_max',
    default: 256,
    doc: 'Per follower and group: append messages sent but not yet acknowledged.',
  }),
  raftMsgBytesMax: spec({
    // At most 64 MiB: one append message must fit a 256 MiB frame with its per-entry overhead.
    kind: integer(1024, 64 * MiB),
    env: 'FASTPACA_RAFT_MSG_BYTES_MAX',
    flag: 'raft-msg-bytes-max',
    toml: 'raft.msg_bytes_max',
    default: MiB,
    doc: 'Largest batch of entries in one append message.',
  }),
  raftUncommittedBytesMax: spec({
    kind: integer(1024, 4096 * MiB),
    env: 'FASTPACA_RAFT_UNCOMMITTED_BYTES_MAX',
    flag: 'raft-uncommitted-bytes-max',
    toml: 'raft.uncommitted_bytes_max',
    default: 64 * MiB,
    doc: 'Per group: uncommitted entry bytes a leader accepts before refusing proposals.',
  }),
  raftLogRetainEntries: spec({
    kind: integer(1, 100_000_000),
    env: 'FASTPACA_RAFT_LOG_RETAIN_ENTRIES',
    flag: 'raft-log-retain-entries',
    toml: 'raft.log_retain_entries',
    // Each group keeps its log entries in memory, measured at ~0.8 KB per 300-byte append: 256 groups
    // × 1,000 ≈ 200 MB at worst (2,000 would be ~400 MB, 10,000 ~2 GB). A follower lagging further
    // than this gets a snapshot, which is cheap: a group's state is read from one LevelDB range.
    default: 1_000,
    doc: "Applied entries kept in each group's in-memory log before it is compacted (a lagging follower within this needs no snapshot).",
  }),
  raftLogRetainBytes: spec({
    kind: integer(64 * 1024, 4096 * MiB),
    env: 'FASTPACA_RAFT_LOG_RETAIN_BYTES',
    flag: 'raft-log-retain-bytes',
    toml: 'raft.log_retain_bytes',
    // 256 groups x 4 MiB bounds the logs' memory at ~1 GiB whatever the message sizes. Must be at
    // least raft.inflight_bytes_max (cross-option-rules.ts).
    default: 4 * MiB,
    doc: "Entry bytes kept in each group's in-memory log before it is compacted, however few the entries (large messages); at least raft.inflight_bytes_max.",
  }),

  // --- caches
  cacheContextsMax: spec({
    kind: integer(1, 100_000_000),
    env: 'FASTPACA_CACHE_CONTEXTS_MAX',
    flag: 'cache-contexts-max',
    toml: 'cache.contexts_max',
    default: 10_000,
    doc: 'Contexts whose header and LLM window are kept in memory (least recently used are evicted to disk).',
  }),
  cacheBytesMax: spec({
    kind: integer(MiB, 1024 * 1024 * MiB),
    env: 'FASTPACA_CACHE_BYTES_MAX',
    flag: 'cache-bytes-max',
    toml: 'cache.bytes_max',
    default: 64 * MiB,
    doc: 'Approximate memory for cached contexts and their LLM windows (estimated); eviction starts at whichever of this and cache.contexts_max is reached first.',
  }),
  cacheTailMessagesMax: spec({
    kind: integer(0, 1_000_000),
    env: 'FASTPACA_CACHE_TAIL_MESSAGES_MAX',
    flag: 'cache-tail-messages-max',
    toml: 'cache.tail_messages_max',
    default: 100,
    doc: 'Newest messages per cached context kept in memory for tail reads and stream replay.',
  }),
} as const;

export type Options = typeof options;
export type OptionKey = keyof Options;

/** The option keys in table order (the order options are resolved and documented in). */
export const optionKeys = Object.keys(options) as OptionKey[];
