// The stream tests' oracle must itself be able to fail: a history with a gap, one with a duplicate,
// one going backwards and one stopping short are each reported.

import { describe, expect, it } from 'vitest';

import { versionProblems } from './version-checker.js';

const message = (version: number, seq = version) => ({ type: 'message', version, seq });

describe('the stream version checker', () => {
  it('accepts cursor+1..last exactly once, each version with its frames together', () => {
    const frames = [
      message(3),
      { type: 'ping' },
      message(4),
      { type: 'compaction', version: 4 },
      { type: 'context', version: 4 },
      message(5),
    ];
    expect(versionProblems(frames, 2, 5)).toEqual([]);
  });

  it('reports a gap', () => {
    expect(versionProblems([message(1), message(2), message(4)], 0, 4)).toEqual([
      'frame #2: version 4 after 2 (gap: 3..3 missing)',
    ]);
  });

  it('reports a duplicate, also one inside its own version', () => {
    expect(versionProblems([message(1), message(2), message(2)], 0, 2)).toEqual([
      'frame #2: message:2 twice at version 2',
    ]);
    expect(versionProblems([message(1), message(2), message(1)], 0, 2)).toEqual([
      'frame #2: version 1 again after 2 (duplicate)',
    ]);
  });

  it('reports versions at or below the cursor and a history that stops short', () => {
    expect(versionProblems([message(2), message(3)], 2, 3)).toEqual([
      'frame #0: version 2 again after 2 (duplicate)',
    ]);
    expect(versionProblems([message(1)], 0, 3)).toEqual(['versions 2..3 never arrived']);
  });
});
