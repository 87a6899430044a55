// Membership arithmetic for single-server changes with learners (Raft thesis §4.1, etcd's learners).
// Changes that would not be a single safe step are no-ops, never errors: they are already committed
// in the log when applied, so every replica must reach the same (unchanged) configuration.

import type { ConfChange, ConfState, NodeId } from './types.js';

export const isVoter = (conf: ConfState, id: NodeId): boolean => conf.voters.includes(id);

export const isLearner = (conf: ConfState, id: NodeId): boolean => conf.learners.includes(id);

export const isMember = (conf: ConfState, id: NodeId): boolean => isVoter(conf, id) || isLearner(conf, id);

export const copyConf = (conf: ConfState): ConfState => ({
  voters: [...conf.voters],
  learners: [...conf.learners],
});

/**
 * The configuration after `change`, or `conf` itself when the change does not apply:
 * - add_learner: a new node joins as a learner (an existing member is left alone);
 * - promote: a learner becomes a voter (only learners can be promoted, so a node always catches up
 *   as a learner before it can affect quorum);
 * - remove: a voter or learner leaves, except the last voter (a group with no voters is dead).
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const { node } = change;
  switch (change.type) {
    case 'add_learner':
      if (isMember(conf, node)) return conf;
      return { voters: conf.voters, learners: [...conf.learners, node] };
    case 'promote':
      if (!isLearner(conf, node)) return conf;
      return { voters: [...conf.voters, node], learners: conf.learners.filter((id) => id !== node) };
    case 'remove':
      if (isLearner(conf, node))
        return { voters: conf.voters, learners: conf.learners.filter((id) => id !== node) };
      if (!isVoter(conf, node) || conf.voters.length === 1) return conf;
      return { voters: conf.voters.filter((id) => id !== node), learners: conf.learners };
  }
}
