// The replicated commands of the context state machine and their wire encoding.
//
// A command carries everything that is not a pure function of the replicated state: the accepting
// node's clock (`now`), token counts (the estimator is slow and may differ between releases), and
// the defaults of a new context. Applying a command therefore never reads a clock or an estimator,
// and every replica computes the same state.
//
// Encoding: `[0x01][msgpack array]`, the tag byte being the format version. Each array starts with
// the command's kind code: 1–5 the client's commands, 6 the archiver's `ack_archived` (its
// watermark, and the tail it trims to: apply-archive.ts). Decoding rejects anything malformed with CommandDecodeError, which the state
// machine turns into an error result on every replica alike (a poison entry must not crash them all).

import type { ContextPut, JsonObject, MessagePart, Policy } from '../api/domain.js';
import { ServiceError } from '../api/errors.js';
import { validateContextId } from '../api/identifiers.js';
import { decodeTagged, encodeTagged } from './codec.js';
import { validateContextPut } from './validation.js';
import { wireShapeProblem } from './wire-shape.js';

export const commandFormatV1 = 0x01;

/** A message as the state machine receives it: validated, counted, not yet numbered. */
export interface MessageDraft {
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata?: JsonObject;
  /** The client's message id, if it sent one; otherwise the id is derived from the seq. */
  readonly clientId?: string;
  /** The message's token count: the client's `token_count`, or the sum of `partTokens`. */
  readonly tokenCount: number;
  /** One count per part, summing to `tokenCount`; lets a filtered message keep an exact count. */
  readonly partTokens: readonly number[];
}

/** What a new context gets for the fields its creating PUT left out. */
export interface ContextDefaults {
  readonly triggerRatio: number;
  readonly policy: Policy;
}

export type Command =
  | {
      readonly type: 'put_context';
      readonly contextId: string;
      readonly now: string;
      /** Only the fields the client sent. */
      readonly changes: ContextPut;
      readonly defaults: ContextDefaults;
    }
  | { readonly type: 'delete_context'; readonly contextId: string; readonly now: string }
  | {
      readonly type: 'patch_metadata';
      readonly contextId: string;
      readonly now: string;
      /** Shallow merge; a null value removes the key. */
      readonly metadata: JsonObject;
    }
  | {
      readonly type: 'append';
      readonly contextId: string;
      readonly now: string;
      readonly message: MessageDraft;
      readonly ifVersion?: number;
      readonly idempotencyKey?: string;
    }
  | {
      readonly type: 'compact';
      readonly contextId: string;
      readonly now: string;
      readonly replacement: readonly MessageDraft[];
      readonly ifVersion?: number;
    }
  | {
      /** The archiver wrote messages 1..upToSeq to the archive (archiver/). */
      readonly type: 'ack_archived';
      readonly contextId: string;
      readonly now: string;
      readonly upToSeq: number;
      /** Archived messages to keep in the store; travels in the command so every replica trims alike. */
      readonly tailKeep: number;
    };

export type CommandType = Command['type'];

const kindCodes = {
  put_context: 1,
  delete_context: 2,
  patch_metadata: 3,
  append: 4,
  compact: 5,
  ack_archived: 6,
} as const satisfies Record<CommandType, number>;

export class CommandDecodeError extends Error {
  override readonly name = 'CommandDecodeError';
}

// ---------------------------------------------------------------------------------------------
// Encoding

const draftToWire = (draft: MessageDraft): unknown[] => [
  draft.role,
  draft.parts,
  draft.metadata ?? null,
  draft.clientId ?? null,
  draft.tokenCount,
  draft.partTokens,
];

const commandToWire = (command: Command): unknown[] => {
  const head = [kindCodes[command.type], command.contextId, command.now];
  switch (command.type) {
    case 'put_context':
      return [...head, command.changes, [command.defaults.triggerRatio, command.defaults.policy]];
    case 'delete_context':
      return head;
    case 'patch_metadata':
      return [...head, command.metadata];
    case 'append':
      return [
        ...head,
        draftToWire(command.message),
        command.ifVersion ?? null,
        command.idempotencyKey ?? null,
      ];
    case 'compact':
      return [...head, command.replacement.map(draftToWire), command.ifVersion ?? null];
    case 'ack_archived':
      return [...head, command.upToSeq, command.tailKeep];
  }
};

export const encodeCommand = (command: Command): Uint8Array =>
  encodeTagged(commandFormatV1, commandToWire(command));

// ---------------------------------------------------------------------------------------------
// Decoding. Every replica applies every committed entry, so whatever an entry holds must decode to
// a Command the state machine can apply, or be refused here the same way everywhere. The checks
// are the ones the service applies before proposing (validation.ts, validateContextId), so no
// command a correct node proposes is refused; the shape of the bytes is checked first
// (wire-shape.ts), so every value below is plain JSON nested at most wireDepthMax deep.

const fail = (what: string): never => {
  throw new CommandDecodeError(`malformed command: ${what}`);
};

/** The service's own check, its ServiceError turned into a refusal of the entry. */
const serviceCheck = <T>(what: string, check: () => T): T => {
  try {
    return check();
  } catch (error) {
    if (error instanceof ServiceError) return fail(`${what}: ${error.message}`);
    throw error;
  }
};

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const str = (value: unknown, what: string): string => (typeof value === 'string' ? value : fail(what));

const nonEmpty = (value: unknown, what: string): string =>
  typeof value === 'string' && value !== '' ? value : fail(what);

const count = (value: unknown, what: string): number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : fail(what);

const obj = (value: unknown, what: string): JsonObject => (isObject(value) ? value : fail(what));

const optional = <T>(value: unknown, read: (value: unknown) => T): T | undefined =>
  value === null || value === undefined ? undefined : read(value);

const parts = (value: unknown): readonly MessagePart[] => {
  // Never empty: an empty message would be indistinguishable from one skip_parts emptied.
  if (!Array.isArray(value) || value.length === 0) return fail('parts');
  for (const part of value) if (!isObject(part) || typeof part.type !== 'string') fail('part');
  return value as MessagePart[];
};

const draftFromWire = (value: unknown): MessageDraft => {
  if (!Array.isArray(value) || value.length !== 6) return fail('message');
  const [role, rawParts, metadata, clientId, tokenCount, partTokens] = value as unknown[];
  const draftParts = parts(rawParts);
  if (!Array.isArray(partTokens) || partTokens.length !== draftParts.length) return fail('partTokens');
  const draft: MessageDraft = {
    role: nonEmpty(role, 'role'),
    parts: draftParts,
    tokenCount: count(tokenCount, 'tokenCount'),
    partTokens: partTokens.map((tokens) => count(tokens, 'partTokens')),
  };
  if (draft.partTokens.reduce((sum, tokens) => sum + tokens, 0) !== draft.tokenCount) fail('partTokens sum');
  const meta = optional(metadata, (v) => obj(v, 'message metadata'));
  const id = optional(clientId, (v) => nonEmpty(v, 'message id'));
  return {
    ...draft,
    ...(meta === undefined ? {} : { metadata: meta }),
    ...(id === undefined ? {} : { clientId: id }),
  };
};

const withOptional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

const policy = (value: unknown): Policy => {
  const raw = obj(value, 'policy');
  const strategy = raw.strategy;
  if (strategy !== 'last_n' && strategy !== 'skip_parts' && strategy !== 'manual')
    return fail('policy strategy');
  return { strategy, config: raw.config === undefined ? {} : obj(raw.config, 'policy config') };
};

const changesFromWire = (value: unknown): ContextPut => {
  const raw = obj(value, 'changes');
  const changes: ContextPut = {
    ...withOptional(
      'token_budget',
      optional(raw.token_budget, (v) => count(v, 'token_budget')),
    ),
    ...withOptional(
      'trigger_ratio',
      optional(raw.trigger_ratio, (v) => (typeof v === 'number' ? v : fail('trigger_ratio'))),
    ),
    ...withOptional('policy', optional(raw.policy, policy)),
    ...withOptional(
      'metadata',
      optional(raw.metadata, (v) => obj(v, 'metadata')),
    ),
  };
  return serviceCheck('changes', () => validateContextPut(changes));
};

const defaultsFromWire = (value: unknown): ContextDefaults => {
  if (!Array.isArray(value) || value.length !== 2) return fail('defaults');
  const [triggerRatio, defaultPolicy] = value as unknown[];
  const checked = serviceCheck('defaults', () =>
    validateContextPut({
      trigger_ratio: typeof triggerRatio === 'number' ? triggerRatio : fail('default ratio'),
      policy: policy(defaultPolicy),
    }),
  );
  const { trigger_ratio: ratio, policy: checkedPolicy } = checked;
  if (ratio === undefined || checkedPolicy === undefined) return fail('defaults');
  return { triggerRatio: ratio, policy: checkedPolicy };
};

const ifVersionOf = (value: unknown) =>
  withOptional(
    'ifVersion',
    optional(value, (v) => count(v, 'if_version')),
  );

/** Fields of each kind's wire array, head included: no more, no fewer. */
const wireLengths: Readonly<Record<number, number>> = {
  [kindCodes.put_context]: 5,
  [kindCodes.delete_context]: 3,
  [kindCodes.patch_metadata]: 4,
  [kindCodes.append]: 6,
  [kindCodes.compact]: 5,
  [kindCodes.ack_archived]: 5,
};

const commandFromWire = (wire: unknown): Command => {
  if (!Array.isArray(wire) || wire.length < 3) return fail('not an array');
  const [kind, rawId, rawNow, a, b, c] = wire as unknown[];
  const expectedLength = typeof kind === 'number' ? wireLengths[kind] : undefined;
  if (expectedLength === undefined) return fail(`unknown kind ${String(kind)}`);
  if (wire.length !== expectedLength) return fail(`${wire.length} fields for kind ${String(kind)}`);
  const contextId = str(rawId, 'context id');
  // Its UTF-8 length is also what keeps it within a key's u16 length prefix (keys.ts).
  serviceCheck('context id', () => validateContextId(contextId));
  const now = str(rawNow, 'now');
  switch (kind) {
    case kindCodes.put_context:
      return {
        type: 'put_context',
        contextId,
        now,
        changes: changesFromWire(a),
        defaults: defaultsFromWire(b),
      };
    case kindCodes.delete_context:
      return { type: 'delete_context', contextId, now };
    case kindCodes.patch_metadata:
      return { type: 'patch_metadata', contextId, now, metadata: obj(a, 'metadata') };
    case kindCodes.append:
      return {
        type: 'append',
        contextId,
        now,
        message: draftFromWire(a),
        ...ifVersionOf(b),
        ...withOptional(
          'idempotencyKey',
          optional(c, (v) => nonEmpty(v, 'idempotency key')),
        ),
      };
    case kindCodes.compact:
      if (!Array.isArray(a)) return fail('replacement');
      return { type: 'compact', contextId, now, replacement: a.map(draftFromWire), ...ifVersionOf(b) };
    case kindCodes.ack_archived:
      return {
        type: 'ack_archived',
        contextId,
        now,
        upToSeq: count(a, 'up_to_seq'),
        tailKeep: count(b, 'tail_keep'),
      };
    default:
      return fail(`unknown kind ${String(kind)}`);
  }
};

/**
 * The command an entry holds. Throws CommandDecodeError, and nothing else, for any bytes that are
 * not one: the same bytes give the same answer on every replica.
 */
export const decodeCommand = (data: Uint8Array): Command => {
  if (data[0] !== commandFormatV1) return fail(`unknown format ${String(data[0])}`);
  const problem = wireShapeProblem(data.subarray(1));
  if (problem !== undefined) return fail(problem);
  let value: unknown;
  try {
    value = decodeTagged(data).value;
  } catch (error) {
    // Not expected once the shape passed; kept so that a msgpackr surprise is a refusal too.
    throw new CommandDecodeError('undecodable command', { cause: error });
  }
  return commandFromWire(value);
};
