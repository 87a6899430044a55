// Proves the tree passes the type-aware linter (incl. raft/core purity rules) and the formatter, and
// that the tests type-check too (vitest runs them without checking types).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const run = (cmd: string, args: string[]): { code: number; output: string } => {
  try {
    const output = execFileSync(cmd, args, { encoding: 'utf8', stdio: 'pipe', timeout: 240_000 });
    return { code: 0, output };
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
};

describe('code quality gates', () => {
  it('passes eslint (type-aware, raft/core purity)', () => {
    const result = run('npx', ['eslint', '--max-warnings=0', '.']);
    expect(result.code, result.output).toBe(0);
  }, 300_000);

  it('is formatted with prettier', () => {
    const result = run('npx', ['prettier', '--check', '.']);
    expect(result.code, result.output).toBe(0);
  }, 120_000);

  it('type-checks the tests (tsconfig.test.json)', () => {
    const result = run('npx', ['tsc', '-p', 'tsconfig.test.json', '--noEmit']);
    expect(result.code, result.output).toBe(0);
  }, 300_000);
});
