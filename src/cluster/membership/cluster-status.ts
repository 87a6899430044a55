// What a node says about the cluster on its internal endpoints: the HELLO answer peers probe during
// formation, and the status report (members, and every group's replicas, leader and progress).

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import { joinHostPort } from './discovery.js';
import type { Formation } from './formation.js';
import type { ClusterStatus, GroupView, HelloAnswer, MemberView, StatusMember } from './internal-protocol.js';
import type { ClusterMember } from './membership.js';
import type { MembershipStateMachine } from './membership-state-machine.js';

export interface ClusterStatusSource {
  readonly nodeId: NodeId;
  readonly metaGroup: GroupId;
  readonly host: Pick<ConsensusHost, 'status' | 'leaderOf'>;
  readonly membership: MembershipStateMachine;
  readonly formation: () => Formation | undefined;
  /** Every peer's Raft address (peer-directory.ts). */
  readonly peers: () => ReadonlyMap<NodeId, string>;
  /** The data groups this node hosts (the meta group is reported on its own). */
  readonly groups: () => readonly GroupId[];
  readonly raftPort: () => number;
}

const memberView = (member: ClusterMember): MemberView => ({
  node_id: member.nodeId,
  host: member.host,
  http_port: member.httpPort,
  raft_port: member.raftPort,
  state: member.state,
  ...(member.incarnation === undefined ? {} : { incarnation: member.incarnation }),
  ...(member.generation === undefined ? {} : { generation: member.generation }),
});

export const helloAnswer = (source: ClusterStatusSource): HelloAnswer => {
  const formation = source.formation();
  const formedWith = formation?.formedWith();
  const joined = formation?.joined() ?? false;
  return {
    nodeId: source.nodeId,
    raftPort: source.raftPort(),
    joined,
    members: source.membership.members().map(memberView),
    ...(formedWith === undefined ? {} : { formedWith }),
    ...(joined || formedWith !== undefined ? {} : { known: formation?.memberIds() ?? [source.nodeId] }),
  };
};

const groupView = (host: ClusterStatusSource['host'], group: GroupId): GroupView => {
  const groupStatus = host.status(group);
  return {
    group,
    voters: [...(groupStatus?.conf.voters ?? [])].sort(),
    learners: [...(groupStatus?.conf.learners ?? [])].sort(),
    // The core's own (term, leader) pair, read at one instant: the host's cached leader is updated
    // only when the core's next Ready is taken, so beside the core's term it could name the
    // previous term's leader.
    leader: groupStatus === undefined ? host.leaderOf(group) : groupStatus.leader,
    term: groupStatus?.term ?? 0,
    commit: groupStatus?.commit ?? 0,
    applied: groupStatus?.applied ?? 0,
  };
};

export const clusterStatus = (source: ClusterStatusSource): ClusterStatus => {
  const { host, metaGroup } = source;
  // Every peer this node talks to, and everyone on the member list (itself, removed nodes too).
  const members = new Map<NodeId, StatusMember>();
  for (const [id, address] of source.peers()) members.set(id, { node_id: id, raft_address: address });
  for (const member of source.membership.members()) {
    members.set(member.nodeId, {
      node_id: member.nodeId,
      raft_address: joinHostPort(member.host, member.raftPort),
      http_address: joinHostPort(member.host, member.httpPort),
      state: member.state,
      ...(member.incarnation === undefined ? {} : { incarnation: member.incarnation }),
    });
  }
  return {
    node_id: source.nodeId,
    joined: source.formation()?.joined() ?? false,
    members: [...members.values()].sort((a, b) =>
      a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0,
    ),
    groups: source.groups().map((group) => groupView(host, group)),
    ...(host.status(metaGroup) === undefined ? {} : { meta: groupView(host, metaGroup) }),
  };
};
