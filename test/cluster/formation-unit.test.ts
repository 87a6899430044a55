// Formation without processes: a node never bootstraps before the expected number of nodes is
// known (so it never forms a cluster of its own), then bootstraps exactly the groups it holds with
// the same sorted voters every node computes; a node whose groups were recovered from disk counts
// as joined at once. An unresolvable or unreachable seed is reported with the reason, for the log.
// A seed given without a cluster secret is refused at start with a message naming the variable.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import type { Member, ProbeResult } from '../../src/cluster/membership/discovery.js';
import { probeSeed } from '../../src/cluster/membership/discovery.js';
import { startFormation } from '../../src/cluster/membership/formation.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startNode } from '../../src/node/node.js';
import { eventually, freePort, sleep } from './cluster-harness.js';

const member = (nodeId: string, port: number): Member => ({
  nodeId,
  host: '127.0.0.1',
  httpPort: port,
  raftPort: port + 1,
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** What every formation here shares: one seed address, no secret, no output, fast probing. */
/** The ports this node reports for itself; peers list it with the same ones. */
const selfPorts = (): { httpPort: number; raftPort: number } => ({ httpPort: 7, raftPort: 8 });

/** This node as a peer's member list names it. */
const listedSelf = (entry: { state: 'active' | 'removed'; incarnation: string }) => ({
  node_id: 'self',
  host: '127.0.0.1',
  http_port: 7,
  raft_port: 8,
  ...entry,
});

const common = {
  seed: [{ host: '127.0.0.1', port: 1 }],
  clusterSecret: undefined,
  onPeers: () => undefined,
  logger: silent,
  probeBackoffMs: { initial: 5, max: 10 },
};

const fakeHost = (initialGroups: number[] = []) => {
  const groups = new Set(initialGroups);
  const bootstraps: [number, readonly string[]][] = [];
  return {
    bootstraps,
    host: {
      groups: () => [...groups].sort((a, b) => a - b),
      bootstrapGroup: (group: number, voters: readonly string[]) => {
        bootstraps.push([group, voters]);
        groups.add(group);
        return Promise.resolve();
      },
    },
  };
};

describe('formation', () => {
  it('waits for the expected size, then bootstraps every group with the sorted voters', async () => {
    let answer: ProbeResult = { members: [member('self', 1), member('zed', 3)], problems: ['b: refused'] };
    const { host, bootstraps } = fakeHost();
    const peersSeen: string[][] = [];
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-self',
      ...common,
      expectedSize: 3,
      groupCount: 8,
      host,
      onPeers: (peers) => peersSeen.push([...peers.keys()]),
      probe: () => Promise.resolve(answer),
    });
    try {
      await sleep(100);
      expect(bootstraps).toEqual([]);
      expect(formation.joined()).toBe(false);
      expect(formation.waitingReason()).toContain('2/3');
      // Peers before forming report the ids they know; all three agree.
      const known = ['alpha', 'self', 'zed'];
      answer = {
        members: [
          { ...member('zed', 3), known },
          { ...member('alpha', 5), known },
        ],
        problems: [],
      };
      await eventually('joined', 2_000, () => Promise.resolve(formation.joined()));
      // Eight data groups, then the meta group (id 8) last.
      expect(bootstraps.map(([group]) => group)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      for (const [, voters] of bootstraps) expect(voters).toEqual(['alpha', 'self', 'zed']);
      expect(formation.peers()).toEqual(
        new Map([
          ['zed', '127.0.0.1:4'],
          ['alpha', '127.0.0.1:6'],
        ]),
      );
      expect(peersSeen.at(-1)?.sort()).toEqual(['alpha', 'zed']);
    } finally {
      await formation.close();
    }
  });

  it('counts a node whose groups were recovered from disk as joined, without bootstrapping', async () => {
    // The meta group (id groupCount) is bootstrapped last: having it means everything was written.
    const { host, bootstraps } = fakeHost([0, 1, 2, 3, 4]);
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-self',
      ...common,
      expectedSize: 3,
      groupCount: 4,
      host,
      probe: () => Promise.resolve({ members: [], problems: [] }),
    });
    expect(formation.joined()).toBe(true);
    await formation.close();
    expect(bootstraps).toEqual([]);
  });

  it('joins an existing cluster instead of forming one, and never bootstraps', async () => {
    const { host, bootstraps } = fakeHost();
    const joined = { ...member('alpha', 1), joined: true };
    const joins: { via: number; host: string | undefined }[] = [];
    let listed = false;
    const formation = startFormation({
      nodeId: 'late',
      incarnation: 'inc-late',
      ...common,
      expectedSize: 3,
      groupCount: 8,
      host,
      selfPorts,
      // Four nodes answer, more than the expected size: a fresh node must still not form.
      probe: () =>
        Promise.resolve({
          members: [joined, { ...member('beta', 3), joined: true }, member('gamma', 5), member('late', 7)],
          problems: [],
        }),
      join: (request) => {
        joins.push({ via: request.via.httpPort, host: request.host });
        // The first attempt meets a leader election; the second is committed.
        if (joins.length === 1) return Promise.reject(new Error('HTTP 503'));
        listed = true;
        return Promise.resolve();
      },
      registered: () => listed,
    });
    try {
      expect(formation.acceptsReplicas()).toBe(false);
      await eventually('joined', 2_000, () => Promise.resolve(formation.joined()));
      expect(bootstraps).toEqual([]);
      expect(formation.acceptsReplicas()).toBe(true);
      expect(joins.length).toBeGreaterThanOrEqual(2);
      // Only members that belong to the cluster are asked; the seed's own address for this node is sent.
      for (const join of joins) expect([1, 3]).toContain(join.via);
      expect(joins[0]?.host).toBe('127.0.0.1');
    } finally {
      await formation.close();
    }
  });

  it('is no member while the member list names it removed or with another incarnation, and takes no replicas', async () => {
    const { host, bootstraps } = fakeHost();
    let listedAs: { state: 'active' | 'removed'; incarnation: string } = {
      state: 'active',
      incarnation: 'inc-before-the-disk-was-replaced',
    };
    let joinRequests = 0;
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-self',
      ...common,
      expectedSize: 3,
      groupCount: 4,
      host,
      selfPorts,
      probe: () =>
        Promise.resolve({
          members: [
            {
              ...member('alpha', 1),
              joined: true,
              knownMembers: [listedSelf(listedAs)],
            },
          ],
          problems: [],
        }),
      // The cluster refuses this node's join, as membership.ts does.
      join: (request) => {
        joinRequests += 1;
        expect(request.incarnation).toBe('inc-self');
        return Promise.reject(new Error('HTTP 409 its data directory was replaced'));
      },
    });
    try {
      await eventually('asked to join', 2_000, () => Promise.resolve(joinRequests >= 2));
      expect(formation.joined()).toBe(false);
      expect(formation.acceptsReplicas()).toBe(false);
      expect(formation.waitingReason()).toContain('waiting to be added');
      // Listed as removed, this very incarnation: asking again would only be refused, so it stops.
      listedAs = { state: 'removed', incarnation: 'inc-self' };
      await eventually('told it was removed', 2_000, () =>
        Promise.resolve(formation.waitingReason()?.includes('removed') === true),
      );
      const asked = joinRequests;
      await sleep(100);
      expect(joinRequests).toBe(asked);
      expect(formation.joined()).toBe(false);
      expect(formation.acceptsReplicas()).toBe(false);
      // Listed as this incarnation, active: a member.
      listedAs = { state: 'active', incarnation: 'inc-self' };
      await eventually('joined', 2_000, () => Promise.resolve(formation.joined()));
      expect(formation.acceptsReplicas()).toBe(true);
      expect(bootstraps).toEqual([]);
    } finally {
      await formation.close();
    }
  });

  it('bootstraps like its peers when they formed the cluster with it (it started late)', async () => {
    const { host, bootstraps } = fakeHost();
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-self',
      ...common,
      expectedSize: 3,
      groupCount: 4,
      host,
      selfPorts,
      probe: () =>
        Promise.resolve({
          members: [
            { ...member('alpha', 1), joined: true, formedWith: ['alpha', 'self', 'zed'] },
            // A node the formers did not count must not change the voters.
            member('other', 3),
          ],
          problems: [],
        }),
      join: () => Promise.resolve(),
    });
    try {
      await eventually('joined', 2_000, () => Promise.resolve(formation.joined()));
      expect(bootstraps.map(([group]) => group)).toEqual([0, 1, 2, 3, 4]);
      for (const [, voters] of bootstraps) expect(voters).toEqual(['alpha', 'self', 'zed']);
    } finally {
      await formation.close();
    }
  });

  it('asks to join rather than bootstrap when peers formed with it but already list it (its data is gone)', async () => {
    const { host, bootstraps } = fakeHost();
    let joinRequests = 0;
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-new',
      ...common,
      expectedSize: 3,
      groupCount: 4,
      host,
      selfPorts,
      probe: () =>
        Promise.resolve({
          members: [
            {
              ...member('alpha', 1),
              joined: true,
              formedWith: ['alpha', 'self', 'zed'],
              knownMembers: [listedSelf({ state: 'active', incarnation: 'inc-old' })],
            },
          ],
          problems: [],
        }),
      join: () => {
        joinRequests += 1;
        return Promise.reject(new Error('HTTP 409 its data directory was replaced'));
      },
    });
    try {
      await eventually('asked to join', 2_000, () => Promise.resolve(joinRequests >= 2));
      expect(bootstraps).toEqual([]);
      expect(formation.joined()).toBe(false);
      expect(formation.acceptsReplicas()).toBe(false);
    } finally {
      await formation.close();
    }
  });

  it('registers a formed node in the member list once it has bootstrapped', async () => {
    const { host, bootstraps } = fakeHost();
    let joinRequests = 0;
    const formation = startFormation({
      nodeId: 'self',
      incarnation: 'inc-self',
      ...common,
      expectedSize: 2,
      groupCount: 2,
      host,
      selfPorts,
      probe: () =>
        Promise.resolve({
          // The peer has bootstrapped too by the second round.
          members: [
            bootstraps.length > 0
              ? { ...member('peer', 3), joined: true }
              : { ...member('peer', 3), known: ['peer', 'self'] },
          ],
          problems: [],
        }),
      join: () => {
        joinRequests += 1;
        return Promise.resolve();
      },
    });
    try {
      await eventually('registered', 2_000, () => Promise.resolve(joinRequests > 0));
      expect(formation.joined()).toBe(true);
      expect(bootstraps.map(([group]) => group)).toEqual([0, 1, 2]);
    } finally {
      await formation.close();
    }
  });

  it('forms only once every known node reports the same ids, and then only the first expectedSize of them', async () => {
    const agreeing = ['alpha', 'beta', 'gamma', 'self'];
    let answer: ProbeResult = {
      members: [
        { ...member('alpha', 3), known: agreeing },
        // beta has not seen self yet: no agreement, nobody may form.
        { ...member('beta', 5), known: ['alpha', 'beta', 'gamma'] },
        { ...member('gamma', 7), known: agreeing },
      ],
      problems: [],
    };
    const run = async (nodeId: string, expectedSize: number) => {
      const fake = fakeHost();
      const formation = startFormation({
        nodeId,
        incarnation: `inc-${nodeId}`,
        ...common,
        expectedSize,
        groupCount: 4,
        host: fake.host,
        probe: () => Promise.resolve(answer),
      });
      return { formation, bootstraps: fake.bootstraps };
    };
    // 'self' sorts last: with four agreeing nodes and three expected, it is not a former.
    const last = await run('self', 3);
    // 'self' as a former when only three are expected and it sorts first among them.
    const agreeingFirst = ['aaa', 'alpha', 'gamma'];
    try {
      await sleep(100);
      expect(last.bootstraps).toEqual([]);
      answer = {
        members: answer.members.map((peer) => ({ ...peer, known: agreeing })),
        problems: [],
      };
      await sleep(100);
      // Everyone agrees on four ids now, but only alpha, beta and gamma form: self waits.
      expect(last.bootstraps).toEqual([]);
      expect(last.formation.joined()).toBe(false);
    } finally {
      await last.formation.close();
    }
    answer = {
      members: [
        { ...member('alpha', 3), known: agreeingFirst },
        { ...member('gamma', 7), known: agreeingFirst },
      ],
      problems: [],
    };
    const first = await run('aaa', 3);
    try {
      await eventually('formed', 2_000, () => Promise.resolve(first.formation.joined()));
      for (const [, voters] of first.bootstraps) expect(voters).toEqual(agreeingFirst);
    } finally {
      await first.formation.close();
    }
  });

  it('reports why seed entries do not answer', async () => {
    const closedPort = await freePort();
    const result = await probeSeed({
      seed: [
        { host: 'no-such-node.invalid', port: 4000 },
        { host: '127.0.0.1', port: closedPort },
      ],
      clusterSecret: 'whatever-secret-value',
      timeoutMs: 1_000,
    });
    expect(result.members).toEqual([]);
    expect(result.problems).toHaveLength(2);
    expect(result.problems.join('\n')).toContain('cannot resolve');
    expect(result.problems.join('\n')).toContain(`127.0.0.1:${closedPort}`);
  });
});

describe('start-up checks', () => {
  it('refuses a cluster seed without a cluster secret, naming FASTPACA_CLUSTER_SECRET', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-cluster-check-'));
    try {
      const { config } = loadConfig({
        env: {
          PORT: '0',
          FASTPACA_HOST: '127.0.0.1',
          FASTPACA_RAFT_DATA_DIR: dataDir,
          FASTPACA_CLUSTER_SEED: '127.0.0.1:4001,127.0.0.1:4002',
          FASTPACA_TOKEN_ESTIMATOR: 'chars4',
        },
      });
      await expect(startNode(config, createLogger({ level: 'silent' }))).rejects.toThrow(
        /FASTPACA_CLUSTER_SECRET/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
