// The acknowledged-entries check (cluster/membership/acknowledged-entries.ts): a leader's match for
// this node above the last index its directory recovered proves the directory forgot acknowledged
// entries; a match at or below it, a deposed leader's (lower term) word, or a group the directory
// does not hold proves nothing. The leader side reports only groups it leads, and the answer
// round-trips through its wire form and refuses garbage. The asking side sends the secret, asks a
// failing peer again until its deadline, and a peer without the endpoint (404) only once.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { GroupStatus } from '../../raft/index.js';
import type { AcknowledgedAnswer, RecoveredLog } from '../../src/cluster/membership/acknowledged-entries.js';
import {
  acknowledgedBody,
  acknowledgedBy,
  askAcknowledged,
  commitsHeld,
  findForgottenEntries,
  forgottenEntriesError,
  logFences,
  parseAcknowledged,
  recoveredLogs,
  termsHeld,
  voteFences,
} from '../../src/cluster/membership/acknowledged-entries.js';

const answer = (
  nodeId: string,
  groups: [number, number, number][],
  terms: [number, number][] = [],
  commits: [number, number, number][] = [],
): AcknowledgedAnswer => ({
  nodeId,
  groups: new Map(groups.map(([group, match, term]) => [group, { match, term }])),
  terms: new Map(terms),
  commits: new Map(commits.map(([group, index, term]) => [group, { index, term }])),
});

const logs = (entries: [number, number, number][]): Map<number, RecoveredLog> =>
  new Map(entries.map(([group, lastIndex, term]) => [group, { lastIndex, term }]));

describe('findForgottenEntries', () => {
  it('a leader that saw an index beyond the directory proves it stale', () => {
    const local = logs([
      [1, 100, 3],
      [2, 50, 3],
    ]);
    const forgotten = findForgottenEntries(local, [
      answer('node-2', [[1, 100, 3]]),
      answer('node-3', [[2, 57, 3]]),
    ]);
    expect(forgotten).toEqual([{ group: 2, leader: 'node-3', match: 57, lastIndex: 50 }]);
  });

  it('match at or below the last index, which includes a snapshot index, proves nothing', () => {
    // A compacted log: recovery's lastIndex is the snapshot index when no entries follow it.
    const local = logs([
      [1, 900, 4],
      [2, 20, 4],
    ]);
    expect(
      findForgottenEntries(local, [
        answer('node-2', [
          [1, 900, 4],
          [2, 0, 4],
        ]),
      ]),
    ).toEqual([]);
  });

  it("a deposed leader's lower term, or a group the directory does not hold, is ignored", () => {
    // The directory rightly truncated entries a later leader replaced: its term is higher.
    const local = logs([[1, 95, 6]]);
    expect(
      findForgottenEntries(local, [
        answer('node-2', [
          [1, 100, 5],
          [7, 40, 6],
        ]),
      ]),
    ).toEqual([]);
    // The same match from a leader of the directory's term (or later) is proof.
    expect(findForgottenEntries(local, [answer('node-3', [[1, 100, 6]])])).toHaveLength(1);
    expect(findForgottenEntries(local, [answer('node-3', [[1, 100, 7]])])).toHaveLength(1);
  });

  it('flags exactly the groups whose leader (of the same or a later term) saw more than the directory holds', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            group: fc.integer({ min: 0, max: 20 }),
            lastIndex: fc.integer({ min: 0, max: 1_000 }),
            term: fc.integer({ min: 0, max: 5 }),
          }),
          { maxLength: 20 },
        ),
        fc.array(
          fc.array(
            fc.record({
              group: fc.integer({ min: 0, max: 25 }),
              match: fc.integer({ min: 0, max: 1_000 }),
              term: fc.integer({ min: 0, max: 5 }),
            }),
            { maxLength: 20 },
          ),
          { maxLength: 3 },
        ),
        (held, peers) => {
          const local = new Map(held.map((h) => [h.group, { lastIndex: h.lastIndex, term: h.term }]));
          const answers = peers.map((groups, i) => ({
            nodeId: `node-${i}`,
            groups: new Map(groups.map((g) => [g.group, { match: g.match, term: g.term }])),
            terms: new Map<number, number>(),
            commits: new Map<number, { index: number; term: number }>(),
          }));
          const forgotten = findForgottenEntries(local, answers);
          const expected = answers.flatMap((a) =>
            [...a.groups].flatMap(([group, known]) => {
              const mine = local.get(group);
              return mine !== undefined && known.term >= mine.term && known.match > mine.lastIndex
                ? [`${a.nodeId}/${group}`]
                : [];
            }),
          );
          expect(forgotten.map((f) => `${f.leader}/${f.group}`).sort()).toEqual(expected.sort());
          // A directory that holds at least every index any leader saw is never refused.
          const fresh = new Map(
            [...local].map(([group, log]) => [
              group,
              {
                term: log.term,
                lastIndex: Math.max(log.lastIndex, ...answers.map((a) => a.groups.get(group)?.match ?? 0)),
              },
            ]),
          );
          expect(findForgottenEntries(fresh, answers)).toEqual([]);
        },
      ),
    );
  });
});

describe('the leader side and the wire form', () => {
  const status = (group: number, role: 'leader' | 'follower', progress?: Record<string, number>) =>
    ({
      group,
      id: 'node-2',
      term: 4,
      vote: null,
      role,
      leader: role === 'leader' ? 'node-2' : 'node-3',
      commit: 10,
      commitTerm: 4,
      applied: 10,
      firstIndex: 1,
      lastIndex: 12,
      conf: { voters: ['node-1', 'node-2', 'node-3'], learners: [] },
      leadTransferee: null,
      ...(progress === undefined
        ? {}
        : {
            progress: Object.fromEntries(
              Object.entries(progress).map(([id, match]) => [
                id,
                { match, next: match + 1, state: 'replicate', recentActive: true },
              ]),
            ),
          }),
    }) as unknown as GroupStatus;
  const host = {
    groups: () => [1, 2, 3],
    status: (group: number): GroupStatus | undefined =>
      group === 1
        ? status(1, 'leader', { 'node-1': 9, 'node-2': 12 })
        : group === 2
          ? status(2, 'follower')
          : status(3, 'leader', { 'node-2': 12 }),
  };

  it('reports only the groups it leads in which the follower has a progress', () => {
    expect([...acknowledgedBy(host, 'node-1')]).toEqual([[1, { match: 9, term: 4 }]]);
    expect(recoveredLogs(host).get(2)).toEqual({ lastIndex: 12, term: 4 });
  });

  it('round-trips its answer and refuses garbage', () => {
    const parsed = parseAcknowledged(
      acknowledgedBody({
        nodeId: 'node-2',
        groups: acknowledgedBy(host, 'node-1'),
        terms: termsHeld(host),
        commits: commitsHeld(host),
      }),
    );
    expect(parsed.nodeId).toBe('node-2');
    expect([...parsed.groups]).toEqual([[1, { match: 9, term: 4 }]]);
    // Every group it holds, led or not, with its term.
    expect([...parsed.terms]).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
    ]);
    // Every group it holds, with the newest entry it knows committed.
    expect([...parsed.commits]).toEqual([
      [1, { index: 10, term: 4 }],
      [2, { index: 10, term: 4 }],
      [3, { index: 10, term: 4 }],
    ]);
    // A peer of an earlier version sends no terms and no commits: no fences, not an error.
    expect(parseAcknowledged('{"node_id":"n","groups":{}}').terms.size).toBe(0);
    expect(parseAcknowledged('{"node_id":"n","groups":{}}').commits.size).toBe(0);
    expect(() =>
      parseAcknowledged('{"node_id":"n","groups":{},"commits":{"1":{"index":3,"term":-1}}}'),
    ).toThrow(/malformed/);
    expect(() => parseAcknowledged('{"node_id":"n","groups":{},"commits":{"1":5}}')).toThrow(/malformed/);
    expect(() => parseAcknowledged('{"node_id":"n","groups":{},"commits":[]}')).not.toThrow();
    expect(() => parseAcknowledged('{"node_id":"n","groups":{},"commits":"x"}')).toThrow(/malformed/);
    expect(() => parseAcknowledged('{"node_id":"n","groups":{},"terms":{"1":-2}}')).toThrow(/malformed/);
    expect(() => parseAcknowledged('{"node_id":"n","groups":{},"terms":7}')).toThrow(/malformed/);
    expect(() => parseAcknowledged('nope')).toThrow(/not JSON/);
    expect(() => parseAcknowledged('{"node_id":"n","groups":{"x":{"match":1,"term":1}}}')).toThrow(
      /malformed/,
    );
    expect(() => parseAcknowledged('{"node_id":"n","groups":{"1":{"match":-1,"term":1}}}')).toThrow(
      /malformed/,
    );
    expect(() => parseAcknowledged('{"groups":{}}')).toThrow(/node_id/);
  });

  it('the refusal names the group, the leader, both indexes and the fix', () => {
    const error = forgottenEntriesError('/data', 'node-1', [
      { group: 4, leader: 'node-3', match: 120, lastIndex: 97 },
      { group: 9, leader: 'node-2', match: 30, lastIndex: 12 },
    ]);
    expect(error.message).toContain('has forgotten log entries node node-1 acknowledged');
    expect(error.message).toContain('group 4: its leader node-3 holds');
    expect(error.message).toContain('index 120, the directory ends at 97; 1 more groups alike');
    expect(error.message).toContain('fastpaca cluster remove node-1');
  });
});

describe('voteFences', () => {
  it('fences each held group at the highest term a peer holds, if not below the recovered term', () => {
    const local = logs([
      [1, 10, 5],
      [2, 10, 5],
      [3, 10, 5],
    ]);
    const fences = voteFences(local, [
      answer(
        'node-2',
        [],
        [
          [1, 5],
          [2, 7],
          [3, 4],
          [9, 8],
        ],
      ),
      answer(
        'node-3',
        [],
        [
          [1, 6],
          [2, 6],
        ],
      ),
    ]);
    // Group 1: the higher of the peers' terms; 2: likewise; 3: below the directory's own term, so no
    // fence is needed; 9: not held here.
    expect([...fences].sort((a, b) => a[0] - b[0])).toEqual([
      [1, 6],
      [2, 7],
    ]);
  });

  it('no answers, no fences', () => {
    expect(voteFences(logs([[1, 10, 5]]), []).size).toBe(0);
  });
});

describe('logFences', () => {
  it('fences each held group at the newest entry a peer knows committed, in log order', () => {
    const local = logs([
      [1, 10, 5],
      [2, 10, 5],
      [3, 40, 5],
    ]);
    const fences = logFences(local, [
      answer(
        'node-2',
        [],
        [],
        [
          [1, 30, 5],
          [2, 12, 6],
          [9, 50, 6],
        ],
      ),
      answer(
        'node-3',
        [],
        [],
        [
          [1, 25, 5],
          [2, 90, 5],
          [3, 8, 4],
        ],
      ),
    ]);
    // Group 1: the higher index in one term; 2: a later term is newer, whatever the index; 3: fenced
    // below what the directory holds (harmless: the replica holds that entry); 9: not held here.
    expect([...fences].sort((a, b) => a[0] - b[0])).toEqual([
      [1, { index: 30, term: 5 }],
      [2, { index: 12, term: 6 }],
      [3, { index: 8, term: 4 }],
    ]);
  });

  it('no answers, no fences; a peer without a commit leaves its groups unfenced', () => {
    expect(logFences(logs([[1, 10, 5]]), []).size).toBe(0);
    expect(logFences(logs([[1, 10, 5]]), [answer('node-2', [], [[1, 5]])]).size).toBe(0);
  });
});

describe('askAcknowledged', () => {
  it('sends the secret, retries a failing peer within the deadline, asks a peer without the endpoint once', async () => {
    const asked = new Map<string, number>();
    const secrets = new Set<unknown>();
    // One local server per peer: "ok" answers, "flaky" fails twice first, "old" has no endpoint.
    const servers = ['ok', 'flaky', 'old'].map((name) =>
      createServer((req, res) => {
        const count = (asked.get(name) ?? 0) + 1;
        asked.set(name, count);
        secrets.add(req.headers['x-fastpaca-cluster-secret']);
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (
          url.pathname !== '/internal/v1/cluster/acknowledged' ||
          url.searchParams.get('node_id') !== 'node-1'
        )
          res.writeHead(400).end();
        else if (name === 'old') res.writeHead(404).end();
        else if (name === 'flaky' && count < 3) res.writeHead(503).end();
        else
          res
            .writeHead(200)
            .end(JSON.stringify({ node_id: `node-${name}`, groups: { 5: { match: 3, term: 2 } } }));
      }),
    );
    try {
      const peers = await Promise.all(
        servers.map(async (server, i) => {
          await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
          const name = ['ok', 'flaky', 'old'][i] ?? '';
          return {
            nodeId: `node-${name}`,
            host: '127.0.0.1',
            httpPort: (server.address() as AddressInfo).port,
          };
        }),
      );
      const started = Date.now();
      const { answers, problems } = await askAcknowledged(
        {
          peers,
          nodeId: 'node-1',
          clusterSecret: 'the-cluster-secret-0123',
          deadline: started + 3_000,
          timeoutMs: 1_000,
          retryMs: 50,
        },
        sleep,
      );
      expect(answers.map((a) => a.nodeId).sort()).toEqual(['node-flaky', 'node-ok']);
      expect([...(answers[0]?.groups ?? [])]).toEqual([[5, { match: 3, term: 2 }]]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('HTTP 404');
      expect(asked.get('flaky')).toBe(3);
      expect(asked.get('old')).toBe(1);
      expect(asked.get('ok')).toBe(1);
      expect([...secrets]).toEqual(['the-cluster-secret-0123']);
      // Once only the peer without the endpoint is left, it stops asking (long before the deadline).
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      for (const server of servers) server.close();
    }
  });
});
