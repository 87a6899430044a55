// The caller's side of forwarding, as the cluster's consensus sees it: propose bytes to a group's
// leader on a peer and learn its outcome, or why there is none (peer-call.ts). Nodes forward over
// one stream per peer (forward-stream.ts).

import type { GroupId, NodeId, ProposeOutcome } from '../../../raft/index.js';
import type { CommandResult } from '../../context/results.js';
import type { PeerCallFailure } from './peer-call.js';

export type ForwardResult =
  { readonly kind: 'outcome'; readonly outcome: ProposeOutcome<CommandResult> } | PeerCallFailure;

export interface Forwarder {
  propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult>;
}
