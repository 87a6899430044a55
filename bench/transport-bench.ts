// Micro-benchmark of the gRPC transport: two transports in this process on 127.0.0.1, one
// sending frames to the other as fast as a bounded in-flight window allows (so nothing is dropped).
// Both ends share one event loop, so the numbers are a floor for two processes. Scenarios:
//   heartbeat-x1   one heartbeat per frame (the per-frame cost)
//   heartbeat-x256 256 coalesced heartbeats per frame (one heartbeat round for every group)
//   app-8x64x300B  8 App messages of 64 entries of 300 bytes per frame (replication under load)
// Prints frames/s and messages/s per scenario (medians of --runs runs of --duration-ms each);
// the last line is one JSON object.
//   npm run build && node dist/bench/transport-bench.js [--duration-ms 2000] [--runs 3]

import { parseArgs } from 'node:util';
import { createGrpcTransport, EntryKind, MessageType } from '../raft/index.js';
import type { Entry, GroupMessage, GrpcTransport } from '../raft/index.js';

interface Scenario {
  readonly name: string;
  readonly frame: readonly GroupMessage[];
  readonly entriesPerFrame: number;
}

interface RunRates {
  readonly framesPerS: number;
  readonly messagesPerS: number;
  readonly entriesPerS: number;
}

const WINDOW_FRAMES = 64;
const SECRET = 'bench-secret';

const heartbeats = (count: number): GroupMessage[] =>
  Array.from({ length: count }, (_, group) => ({
    group,
    message: {
      type: MessageType.Heartbeat,
      from: 'sender',
      to: 'receiver',
      term: 7,
      commit: 123_456,
      context: 0,
    },
  }));

const appends = (messages: number, entriesEach: number, entryBytes: number): GroupMessage[] =>
  Array.from({ length: messages }, (_, group) => {
    const entries: Entry[] = Array.from({ length: entriesEach }, (_, i) => ({
      term: 7,
      index: 1_000 + i,
      kind: EntryKind.Normal,
      data: new Uint8Array(entryBytes).fill(i % 256),
    }));
    return {
      group,
      message: {
        type: MessageType.App,
        from: 'sender',
        to: 'receiver',
        term: 7,
        index: 999,
        logTerm: 7,
        commit: 999,
        entries,
      },
    };
  });

const scenarios: readonly Scenario[] = [
  { name: 'heartbeat-x1', frame: heartbeats(1), entriesPerFrame: 0 },
  { name: 'heartbeat-x256', frame: heartbeats(256), entriesPerFrame: 0 },
  { name: 'app-8x64x300B', frame: appends(8, 64, 300), entriesPerFrame: 8 * 64 },
];

const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/** Frames handed to `send` and frames the receiver saw, since start-up. */
interface Counters {
  sent: number;
  received: number;
}

/** Frames sent and neither received nor dropped yet. */
const inFlight = (sender: GrpcTransport, counters: Counters): number =>
  counters.sent - counters.received - sender.stats().framesDropped;

/** Sends `scenario.frame` for `durationMs`, keeping at most WINDOW_FRAMES frames in flight. */
const runOnce = async (
  sender: GrpcTransport,
  counters: Counters,
  scenario: Scenario,
  durationMs: number,
): Promise<RunRates> => {
  const startReceived = counters.received;
  const startNs = process.hrtime.bigint();
  const endNs = startNs + BigInt(durationMs) * 1_000_000n;
  while (process.hrtime.bigint() < endNs) {
    for (let room = WINDOW_FRAMES - inFlight(sender, counters); room > 0; room--) {
      sender.send('receiver', scenario.frame);
      counters.sent += 1;
    }
    await yieldToIo();
  }
  const frames = counters.received - startReceived;
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  // Let the window drain so the next run starts with nothing in flight (bounded wait).
  const drainDeadline = Date.now() + 10_000;
  while (inFlight(sender, counters) > 0 && Date.now() < drainDeadline) await yieldToIo();
  return {
    framesPerS: Math.round(frames / seconds),
    messagesPerS: Math.round((frames * scenario.frame.length) / seconds),
    entriesPerS: Math.round((frames * scenario.entriesPerFrame) / seconds),
  };
};

const main = async (): Promise<void> => {
  const { values } = parseArgs({
    options: { 'duration-ms': { type: 'string', default: '2000' }, runs: { type: 'string', default: '3' } },
  });
  const durationMs = Number(values['duration-ms']);
  const runs = Number(values.runs);
  const sender = createGrpcTransport({ nodeId: 'sender', clusterSecret: SECRET });
  const receiver = createGrpcTransport({ nodeId: 'receiver', clusterSecret: SECRET });
  const counters: Counters = { sent: 0, received: 0 };
  await receiver.start({ onMessages: () => void (counters.received += 1), onSnapshot: async () => true });
  await sender.start({ onMessages: () => undefined, onSnapshot: async () => true });
  sender.setPeers(new Map([['receiver', `127.0.0.1:${receiver.port()}`]]));
  const results: Record<string, { frames_per_s: number; messages_per_s: number; entries_per_s: number }> = {};
  try {
    for (const scenario of scenarios) {
      await runOnce(sender, counters, scenario, Math.min(300, durationMs)); // warm-up, also dials
      const rates: RunRates[] = [];
      for (let run = 0; run < runs; run++) rates.push(await runOnce(sender, counters, scenario, durationMs));
      const summary = {
        frames_per_s: median(rates.map((rate) => rate.framesPerS)),
        messages_per_s: median(rates.map((rate) => rate.messagesPerS)),
        entries_per_s: median(rates.map((rate) => rate.entriesPerS)),
      };
      results[scenario.name] = summary;
      console.log(
        `${scenario.name.padEnd(16)} ${String(summary.frames_per_s).padStart(8)} frames/s ` +
          `${String(summary.messages_per_s).padStart(10)} messages/s ${String(summary.entries_per_s).padStart(10)} entries/s`,
      );
    }
  } finally {
    await Promise.all([sender.stop(), receiver.stop()]);
  }
  const dropped = sender.stats().framesDropped;
  console.log(
    JSON.stringify({ bench: 'transport', duration_ms: durationMs, runs, frames_dropped: dropped, results }),
  );
};

await main();
