// The cluster's member list, as the meta Raft group's state machine holds it: who the nodes are,
// where they are reached, and whether they are staying (active) or being drained (leaving).
// Pure: `applyMembership` is the deterministic apply of one committed command, so every replica of
// the meta group computes the same list. A node is never dropped because it is down (a SIGKILLed
// node keeps its replicas and gets them back on restart); only an explicit remove drains it, and
// only a drained node is forgotten. A forgotten node stays listed as `removed`, so it can never
// add itself back by accident (its stale data must not rejoin).
//
// Each member also carries its data directory's incarnation (config/node-name.ts). A name is
// reused safely only by a new incarnation, and only once the old one is gone: a removed node comes
// back under its name with an empty data directory, while a member whose data directory was
// replaced is refused until it is removed (it forgot the votes and logs its replicas vouched for).
// "Gone" includes the meta group: a removed node keeps its learner there until the meta leader drops
// it and then says so (`purge`). Before that, a new incarnation under the name would inherit the old
// learner's progress in the meta group and could be promoted to voter while its log is empty.

import type { NodeId } from '../../../raft/index.js';

export type MemberState = 'active' | 'leaving' | 'removed';

export interface MemberAddress {
  readonly nodeId: NodeId;
  /** The address peers reach the node at (HTTP and Raft share it). */
  readonly host: string;
  readonly httpPort: number;
  readonly raftPort: number;
  /** The data directory's incarnation; absent in lists written before members carried one. */
  readonly incarnation?: string;
}

export interface ClusterMember extends MemberAddress {
  readonly state: MemberState;
  /** A removed member the meta group no longer counts either: its name may come back. */
  readonly purged?: true;
  /**
   * The highest start generation this incarnation reported (generation.ts): its data directory
   * had persisted at least that one, so a copy of the directory holding less is stale.
   */
  readonly generation?: number;
}

export type MembershipCommand =
  /** Adds the node as active, or updates the address of a known node (its state is kept). */
  | { readonly type: 'join'; readonly member: MemberAddress }
  /** Starts draining an active node: placement stops counting it, its replicas move away. */
  | { readonly type: 'leave'; readonly nodeId: NodeId }
  /** Marks a drained (leaving) node removed for good: no group keeps a replica on it. */
  | { readonly type: 'forget'; readonly nodeId: NodeId }
  /** The meta group's leader reports that its membership no longer counts a removed node. */
  | { readonly type: 'purge'; readonly nodeId: NodeId }
  /** A member's data directory persisted this generation (it only grows; generation.ts). */
  | {
      readonly type: 'generation';
      readonly nodeId: NodeId;
      readonly incarnation: string;
      readonly generation: number;
    };

export type MembershipOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface MembershipApplied {
  readonly members: readonly ClusterMember[];
  readonly outcome: MembershipOutcome;
}

const byId = (a: ClusterMember, b: ClusterMember): number =>
  a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;

/**
 * The list after `command`. `minActive` refuses a leave that would leave fewer active nodes than
 * the replication factor: the groups would have nowhere to keep their replicas.
 */
export const applyMembership = (
  members: readonly ClusterMember[],
  command: MembershipCommand,
  minActive: number,
): MembershipApplied => {
  const refuse = (reason: string): MembershipApplied => ({ members, outcome: { ok: false, reason } });
  switch (command.type) {
    case 'join': {
      const { nodeId, host, httpPort, raftPort, incarnation } = command.member;
      const known = members.find((member) => member.nodeId === nodeId);
      const sameIncarnation =
        known?.incarnation === undefined || incarnation === undefined || known.incarnation === incarnation;
      let state: MemberState = known?.state ?? 'active';
      if (known?.state === 'removed') {
        if (sameIncarnation) {
          return refuse(
            `node ${nodeId} was removed from the cluster; start it with an empty data directory to add it again`,
          );
        }
        if (known.purged !== true) {
          return refuse(
            `node ${nodeId} was removed and its last replica is still being dropped; try again shortly`,
          );
        }
        state = 'active';
      } else if (known !== undefined && !sameIncarnation) {
        return refuse(
          `node ${nodeId} is a member, but its data directory was replaced (incarnation ${incarnation ?? '?'}, ` +
            `not ${known.incarnation ?? '?'}): it forgot what its replicas stored and voted, so it cannot ` +
            `take their place; run \`fastpaca cluster remove ${nodeId}\`, and it then joins as a new node`,
        );
      }
      const recorded = incarnation ?? known?.incarnation;
      // A new incarnation under a purged name starts its generations afresh.
      const generation = known?.state === 'removed' ? undefined : known?.generation;
      const joined: ClusterMember = {
        nodeId,
        host,
        httpPort,
        raftPort,
        ...(recorded === undefined ? {} : { incarnation: recorded }),
        state,
        ...(generation === undefined ? {} : { generation }),
      };
      const others = members.filter((member) => member.nodeId !== nodeId);
      return { members: [...others, joined].sort(byId), outcome: { ok: true } };
    }
    case 'leave': {
      const known = members.find((member) => member.nodeId === command.nodeId);
      if (known === undefined) return refuse(`node ${command.nodeId} is not a member`);
      if (known.state !== 'active') return { members, outcome: { ok: true } };
      const active = members.filter((member) => member.state === 'active').length;
      if (active - 1 < minActive) {
        return refuse(
          `removing ${command.nodeId} would leave ${active - 1} active nodes, fewer than the ${minActive} replicas every group needs`,
        );
      }
      return {
        members: members.map((member) =>
          member.nodeId === command.nodeId ? { ...member, state: 'leaving' } : member,
        ),
        outcome: { ok: true },
      };
    }
    case 'purge': {
      const known = members.find((member) => member.nodeId === command.nodeId);
      if (known?.state !== 'removed') return refuse(`node ${command.nodeId} is not a removed member`);
      if (known.purged === true) return { members, outcome: { ok: true } };
      return {
        members: members.map((member) =>
          member.nodeId === command.nodeId ? { ...member, purged: true as const } : member,
        ),
        outcome: { ok: true },
      };
    }
    case 'generation': {
      const known = members.find((member) => member.nodeId === command.nodeId);
      if (known === undefined || known.state === 'removed')
        return refuse(`node ${command.nodeId} is not a current member`);
      if (known.incarnation !== command.incarnation)
        return refuse(`node ${command.nodeId} is a member under another incarnation`);
      if ((known.generation ?? 0) >= command.generation) return { members, outcome: { ok: true } };
      return {
        members: members.map((member) =>
          member.nodeId === command.nodeId ? { ...member, generation: command.generation } : member,
        ),
        outcome: { ok: true },
      };
    }
    case 'forget': {
      const known = members.find((member) => member.nodeId === command.nodeId);
      if (known === undefined) return refuse(`node ${command.nodeId} is not a member`);
      if (known.state === 'removed') return { members, outcome: { ok: true } };
      if (known.state !== 'leaving') return refuse(`node ${command.nodeId} is active; remove it first`);
      return {
        members: members.map((member) =>
          member.nodeId === command.nodeId ? { ...member, state: 'removed' } : member,
        ),
        outcome: { ok: true },
      };
    }
  }
};

export const activeIds = (members: readonly ClusterMember[]): NodeId[] =>
  members.filter((member) => member.state === 'active').map((member) => member.nodeId);

/**
 * The list names this node as a current member (active or leaving) of this very incarnation. An
 * entry with none recorded (from before members carried one) does not count: the node then asks to
 * join once more, which records it.
 */
export const namesIncarnation = (
  members: readonly ClusterMember[],
  nodeId: NodeId,
  incarnation: string,
): boolean =>
  members.some(
    (member) => member.nodeId === nodeId && member.state !== 'removed' && member.incarnation === incarnation,
  );

/** Members that still hold (or may hold) replicas: active and leaving ones. */
export const currentMembers = (members: readonly ClusterMember[]): ClusterMember[] =>
  members.filter((member) => member.state !== 'removed');

// ---------------------------------------------------------------------------------------------
// Encoding: JSON with a tag byte, so a meta entry can never be mistaken for anything else.

const commandTag = 0x4d; // 'M'

export class MembershipDecodeError extends Error {}

export const encodeMembershipCommand = (command: MembershipCommand): Uint8Array => {
  const json = new TextEncoder().encode(JSON.stringify(command));
  const bytes = new Uint8Array(json.length + 1);
  bytes[0] = commandTag;
  bytes.set(json, 1);
  return bytes;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isPort = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65_535;

const isGeneration = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const parseAddress = (value: unknown): MemberAddress => {
  if (!isRecord(value)) throw new MembershipDecodeError('member is not an object');
  const { nodeId, host, httpPort, raftPort } = value;
  if (typeof nodeId !== 'string' || nodeId.length === 0) throw new MembershipDecodeError('bad nodeId');
  if (typeof host !== 'string' || host.length === 0) throw new MembershipDecodeError('bad host');
  if (!isPort(httpPort) || !isPort(raftPort)) throw new MembershipDecodeError('bad port');
  const incarnation = value['incarnation'];
  if (incarnation === undefined) return { nodeId, host, httpPort, raftPort };
  if (typeof incarnation !== 'string' || incarnation.length === 0)
    throw new MembershipDecodeError('bad incarnation');
  return { nodeId, host, httpPort, raftPort, incarnation };
};

export const decodeMembershipCommand = (data: Uint8Array): MembershipCommand => {
  if (data[0] !== commandTag) throw new MembershipDecodeError('not a membership command');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data.subarray(1)));
  } catch {
    throw new MembershipDecodeError('membership command is not JSON');
  }
  if (!isRecord(value)) throw new MembershipDecodeError('membership command is not an object');
  switch (value['type']) {
    case 'join':
      return { type: 'join', member: parseAddress(value['member']) };
    case 'generation': {
      const { nodeId, incarnation, generation } = value;
      if (typeof nodeId !== 'string' || nodeId.length === 0) throw new MembershipDecodeError('bad nodeId');
      if (typeof incarnation !== 'string' || incarnation.length === 0)
        throw new MembershipDecodeError('bad incarnation');
      if (!isGeneration(generation)) throw new MembershipDecodeError('bad generation');
      return { type: 'generation', nodeId, incarnation, generation };
    }
    case 'leave':
    case 'forget':
    case 'purge': {
      const nodeId = value['nodeId'];
      if (typeof nodeId !== 'string') throw new MembershipDecodeError('bad nodeId');
      return { type: value['type'], nodeId };
    }
    default:
      throw new MembershipDecodeError('unknown membership command');
  }
};

export const encodeMembers = (members: readonly ClusterMember[]): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(members));

export const decodeMembers = (data: Uint8Array): ClusterMember[] => {
  const value: unknown = JSON.parse(new TextDecoder().decode(data));
  if (!Array.isArray(value)) throw new MembershipDecodeError('member list is not an array');
  return value.map((entry: unknown) => {
    const address = parseAddress(entry);
    const state = isRecord(entry) ? entry['state'] : undefined;
    if (state !== 'active' && state !== 'leaving' && state !== 'removed')
      throw new MembershipDecodeError('bad member state');
    const purged = state === 'removed' && isRecord(entry) && entry['purged'] === true;
    const generation = isRecord(entry) ? entry['generation'] : undefined;
    if (generation !== undefined && !isGeneration(generation))
      throw new MembershipDecodeError('bad member generation');
    const member: ClusterMember = purged ? { ...address, state, purged } : { ...address, state };
    return generation === undefined ? member : { ...member, generation };
  });
};
