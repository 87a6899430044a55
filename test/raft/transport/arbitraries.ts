// fast-check generators of Raft messages and snapshot chunks for the transport tests: every
// MessageType, with any subset of the optional fields, so the codec is tested on shapes the core
// does not produce today as well as on those it does.

import fc from 'fast-check';
import type { GroupMessage, SnapshotChunk } from '../../../raft/api.js';
import { EntryKind, MessageType } from '../../../raft/core/types.js';
import type { Entry, Message, NodeId, SnapshotMeta } from '../../../raft/core/types.js';

export const nodeIdArb: fc.Arbitrary<NodeId> = fc.oneof(fc.uuid(), fc.string({ maxLength: 12 }));

export const messageTypeArb: fc.Arbitrary<MessageType> = fc.constantFrom(...Object.values(MessageType));

export const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: fc.maxSafeNat(),
  index: fc.maxSafeNat(),
  kind: fc.constantFrom(EntryKind.Normal, EntryKind.Conf),
  data: fc.uint8Array({ maxLength: 64 }),
});

export const snapshotMetaArb: fc.Arbitrary<SnapshotMeta> = fc.record({
  index: fc.maxSafeNat(),
  term: fc.maxSafeNat(),
  conf: fc.record({
    voters: fc.array(nodeIdArb, { maxLength: 5 }),
    learners: fc.array(nodeIdArb, { maxLength: 3 }),
  }),
});

/** A message between `from` and `to` (or, now and then, between other nodes). */
export const messageArb = (from: NodeId, to: NodeId, type?: MessageType): fc.Arbitrary<Message> =>
  fc.record(
    {
      type: type === undefined ? messageTypeArb : fc.constant(type),
      from: fc.oneof({ weight: 4, arbitrary: fc.constant(from) }, { weight: 1, arbitrary: nodeIdArb }),
      to: fc.oneof({ weight: 4, arbitrary: fc.constant(to) }, { weight: 1, arbitrary: nodeIdArb }),
      term: fc.maxSafeNat(),
      logTerm: fc.maxSafeNat(),
      index: fc.maxSafeNat(),
      entries: fc.array(entryArb, { maxLength: 4 }),
      commit: fc.maxSafeNat(),
      reject: fc.boolean(),
      rejectHint: fc.maxSafeNat(),
      snapshot: snapshotMetaArb,
      context: fc.maxSafeInteger(),
    },
    { requiredKeys: ['type', 'from', 'to', 'term'] },
  );

export const groupMessageArb = (from: NodeId, to: NodeId, type?: MessageType): fc.Arbitrary<GroupMessage> =>
  fc.record({ group: fc.integer({ min: 0, max: 65_535 }), message: messageArb(from, to, type) });

export const snapshotChunkArb = (from: NodeId, to: NodeId): fc.Arbitrary<SnapshotChunk> =>
  fc.record({
    group: fc.integer({ min: 0, max: 65_535 }),
    message: messageArb(from, to, MessageType.Snap),
    seq: fc.nat(),
    pairs: fc.array(fc.tuple(fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 128 })), {
      maxLength: 16,
    }),
    last: fc.boolean(),
  });
