// Prometheus metrics: one registry per node with the series of the deployment guide (API.md,
// Operations) plus Raft, HTTP, stream, tokenizer and process series. Labelled series are only
// reachable through recorder functions that bound their labels (roles fold into five values, routes
// and statuses into small sets), so no caller can create a series per context id. Gauges that
// describe another component's state are read from callbacks at scrape time (bindRaft,
// bindGauges) instead of being pushed on every change.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const messageRoles = ['user', 'assistant', 'system', 'tool', 'other'] as const;
export type MessageRole = (typeof messageRoles)[number];

/** Where an appended message's token count came from: the client's token_count, or our estimator. */
export type TokenSource = 'client' | 'server';

/** Raft proposal outcomes: success, or one of raft/api.ts's FailureCode values, lower-cased. */
export type ProposalOutcome =
  'ok' | 'not_leader' | 'overloaded' | 'timeout' | 'shutting_down' | 'no_group' | 'dropped';

/** Read at scrape time from the Raft host. */
export interface RaftGaugeSource {
  groups(): number;
  leaderGroups(): number;
  groupsWithoutLeader(): number;
  /** The highest term of any hosted group. */
  maxTerm(): number;
  proposalQueueDepth(): number;
}

/** Read at scrape time from the components that own them; unbound gauges read 0. */
export interface GaugeSources {
  streamConnections?: () => number;
  tokenizerQueuedParts?: () => number;
  archivePendingRows?: () => number;
  archivePendingContexts?: () => number;
}

export interface HttpRequestSample {
  readonly method: string;
  /** The route pattern ("/v1/contexts/:id/messages"), never the concrete path. */
  readonly route: string;
  readonly status: number;
  readonly durationSeconds: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** For the /metrics response's Content-Type header. */
  readonly contentType: string;
  render(): Promise<string>;

  recordAppend(role: string, source: TokenSource, tokenCount: number): void;
  recordHttpRequest(sample: HttpRequestSample): void;
  recordProposal(outcome: ProposalOutcome): void;

  readonly raft: {
    readonly forwardedTotal: Counter;
    readonly fsyncsTotal: Counter;
    readonly fsyncDurationSeconds: Histogram;
    readonly entriesPersistedTotal: Counter;
    readonly turnDurationSeconds: Histogram;
    readonly messagesSentTotal: Counter;
    readonly framesSentTotal: Counter;
    readonly messagesReceivedTotal: Counter;
    readonly snapshotsSentTotal: Counter;
    readonly snapshotsReceivedTotal: Counter;
    readonly entriesRefusedTotal: Counter;
  };
  readonly archive: {
    readonly flushDurationMs: Histogram;
    readonly attemptedTotal: Counter;
    readonly insertedTotal: Counter;
    readonly trimmedTotal: Counter;
    /** last_seq - archived_seq of a context, observed on each archive ack. */
    readonly lag: Histogram;
    /** Messages left in a context's Raft tail after a trim. */
    readonly tailSize: Histogram;
    /** A context's LLM window token count, observed on each archive ack. */
    readonly llmTokenCount: Histogram;
  };
  readonly stream: {
    readonly framesSentTotal: Counter;
    readonly slowConsumersClosedTotal: Counter;
    /** From a subscriber's registration to the end of its replay (it is live from then on). */
    readonly replayDurationSeconds: Histogram;
  };
  readonly tokenizer: {
    readonly partsCountedTotal: Counter;
    readonly workerRestartsTotal: Counter;
    readonly fallbacksTotal: Counter<'reason'>;
  };

  bindRaft(source: RaftGaugeSource): void;
  bindGauges(sources: GaugeSources): void;
}

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event-loop lag, GC); off in tests that count series. */
  readonly processMetrics?: boolean;
  /** Labels on every series, e.g. { node: nodeName }. */
  readonly defaultLabels?: Readonly<Record<string, string>>;
}

const httpMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Distinct route label values accepted before the rest fold into "other" (a misuse guard). */
const routeLabelsMax = 64;

export const boundedRole = (role: string): MessageRole =>
  (messageRoles as readonly string[]).includes(role) ? (role as MessageRole) : 'other';

export const createMetrics = (options: MetricsOptions = {}): Metrics => {
  const registry = new Registry();
  if (options.defaultLabels !== undefined) registry.setDefaultLabels({ ...options.defaultLabels });
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) => new Histogram<L>({ name, help, buckets, labelNames, registers: [registry] });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });

  const appendTotal = counter('fastpaca_messages_append_total', 'Messages appended', ['role', 'source']);
  const tokenCount = histogram(
    'fastpaca_messages_token_count',
    'Token count per appended message',
    [10, 50, 100, 500, 1000, 5000, 10000],
    ['role', 'source'],
  );
  const httpRequests = counter('fastpaca_http_requests_total', 'HTTP requests answered', [
    'method',
    'route',
    'status',
  ]);
  const httpDuration = histogram(
    'fastpaca_http_request_duration_seconds',
    'HTTP request duration, from first byte to response',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ['method', 'route'],
  );
  const proposals = counter('fastpaca_raft_proposals_total', 'Raft proposals by outcome', ['outcome']);

  let raftSource: RaftGaugeSource | undefined;
  const gaugeSources: GaugeSources = {};
  gauge('fastpaca_raft_groups', 'Raft groups hosted on this node', () => raftSource?.groups() ?? 0);
  gauge('fastpaca_raft_leader_groups', 'Raft groups this node leads', () => raftSource?.leaderGroups() ?? 0);
  gauge(
    'fastpaca_raft_groups_without_leader',
    'Hosted Raft groups with no known leader',
    () => raftSource?.groupsWithoutLeader() ?? 0,
  );
  gauge('fastpaca_raft_term', 'Highest Raft term of any hosted group', () => raftSource?.maxTerm() ?? 0);
  gauge(
    'fastpaca_raft_proposal_queue_depth',
    'Proposals queued for the next loop turn',
    () => raftSource?.proposalQueueDepth() ?? 0,
  );
  gauge(
    'fastpaca_stream_connections',
    'Open websocket and SSE subscribers',
    () => gaugeSources.streamConnections?.() ?? 0,
  );
  gauge(
    'fastpaca_tokenizer_queued_parts',
    'Message parts waiting for a tokenizer worker',
    () => gaugeSources.tokenizerQueuedParts?.() ?? 0,
  );
  gauge(
    'fastpaca_archive_pending_rows',
    'Rows pending in the archive queue',
    () => gaugeSources.archivePendingRows?.() ?? 0,
  );
  gauge(
    'fastpaca_archive_pending_contexts',
    'Contexts with rows pending in the archive queue',
    () => gaugeSources.archivePendingContexts?.() ?? 0,
  );

  const seenRoutes = new Set<string>();
  const boundedRoute = (route: string): string => {
    if (seenRoutes.has(route)) return route;
    if (seenRoutes.size >= routeLabelsMax) return 'other';
    seenRoutes.add(route);
    return route;
  };
  const countBuckets = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    recordAppend(role, source, tokens) {
      const labels = { role: boundedRole(role), source };
      appendTotal.inc(labels);
      tokenCount.observe(labels, tokens);
    },
    recordHttpRequest(sample) {
      const method = httpMethods.has(sample.method.toUpperCase()) ? sample.method.toUpperCase() : 'OTHER';
      const route = boundedRoute(sample.route);
      const status =
        Number.isInteger(sample.status) && sample.status >= 100 && sample.status <= 599 ? sample.status : 0;
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ method, route }, sample.durationSeconds);
    },
    recordProposal(outcome) {
      proposals.inc({ outcome });
    },
    raft: {
      forwardedTotal: counter(
        'fastpaca_raft_forwarded_total',
        "Proposals forwarded to another node's leader",
      ),
      fsyncsTotal: counter('fastpaca_raft_fsyncs_total', 'Synced LevelDB batches written'),
      fsyncDurationSeconds: histogram(
        'fastpaca_raft_fsync_duration_seconds',
        'Duration of one synced LevelDB batch',
        [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      ),
      entriesPersistedTotal: counter(
        'fastpaca_raft_entries_persisted_total',
        'Raft log entries made durable',
      ),
      turnDurationSeconds: histogram(
        'fastpaca_raft_turn_duration_seconds',
        'Duration of one Raft host loop turn',
        [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      ),
      messagesSentTotal: counter('fastpaca_raft_messages_sent_total', 'Raft messages sent to peers'),
      framesSentTotal: counter(
        'fastpaca_raft_frames_sent_total',
        'Frames of Raft messages sent to peers (one per peer and flush)',
      ),
      messagesReceivedTotal: counter(
        'fastpaca_raft_messages_received_total',
        'Raft messages received from peers',
      ),
      snapshotsSentTotal: counter('fastpaca_raft_snapshots_sent_total', 'Group snapshots streamed to peers'),
      snapshotsReceivedTotal: counter(
        'fastpaca_raft_snapshots_received_total',
        'Group snapshots received from a leader and installed',
      ),
      entriesRefusedTotal: counter(
        'fastpaca_raft_entries_refused_total',
        'Replicated appends and snapshots this node dropped while its disk was below the free-space floor',
      ),
    },
    archive: {
      flushDurationMs: histogram(
        'fastpaca_archive_flush_duration_ms',
        'Archive flush tick duration in milliseconds',
        [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      ),
      attemptedTotal: counter('fastpaca_archive_attempted_total', 'Rows the archiver attempted to insert'),
      insertedTotal: counter('fastpaca_archive_inserted_total', 'Rows inserted into the archive'),
      trimmedTotal: counter(
        'fastpaca_archive_trimmed_total',
        'Messages trimmed from Raft tails after archiving',
      ),
      lag: histogram(
        'fastpaca_archive_lag',
        'Per-context archive lag (last_seq - archived_seq), observed on ack',
        countBuckets,
      ),
      tailSize: histogram(
        'fastpaca_archive_tail_size',
        'Per-context Raft tail size after trim',
        countBuckets,
      ),
      llmTokenCount: histogram(
        'fastpaca_archive_llm_token_count',
        'Per-context LLM window token count, observed on ack',
        [100, 1000, 10_000, 50_000, 100_000, 200_000, 1_000_000],
      ),
    },
    stream: {
      framesSentTotal: counter('fastpaca_stream_frames_sent_total', 'Websocket and SSE frames sent'),
      slowConsumersClosedTotal: counter(
        'fastpaca_stream_slow_consumers_closed_total',
        'Subscribers closed for falling behind',
      ),
      replayDurationSeconds: histogram(
        'fastpaca_stream_replay_duration_seconds',
        'Time a new (or resynchronizing) subscriber took to replay history before going live',
        [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
      ),
    },
    tokenizer: {
      partsCountedTotal: counter(
        'fastpaca_tokenizer_parts_counted_total',
        'Message parts counted by the estimator',
      ),
      workerRestartsTotal: counter(
        'fastpaca_tokenizer_worker_restarts_total',
        'Tokenizer workers restarted after a crash or an overrun batch',
      ),
      fallbacksTotal: counter(
        'fastpaca_tokenizer_fallbacks_total',
        'Message parts counted by the chars4 estimate because exact counting overran, crashed or failed',
        ['reason'],
      ),
    },
    bindRaft(source) {
      raftSource = source;
    },
    bindGauges(sources) {
      Object.assign(gaugeSources, sources);
    },
  };
};
