// scripts/patch-uws.mjs, run by `npm ci` (postinstall): the uWebSockets.js addon this Node loads
// carries our fix for uWebSockets#1928 (a websocket upgraded inside res.cork after an await could be
// shut down right after it opened). The behaviour is tested in test/stream/websocket-stream.test.ts;
// this checks the install step did its part, so a missed patch fails here by name.
import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

describe('the uWebSockets.js patch', () => {
  it('is applied to the installed addon (or, on a platform it has no patch for, says so)', () => {
    const output = execFileSync(process.execPath, ['scripts/patch-uws.mjs', '--check'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    const patchable =
      process.platform === 'linux' && process.arch === 'x64' && process.versions.modules === '115';
    if (patchable) expect(output).toMatch(/uws_linux_x64_115\.node: patched$/m);
    else expect(output).toBe('');
  });
});
