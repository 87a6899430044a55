// Broken invariants mean corrupt consensus state: the core throws rather than limp on, and the host
// crashes. Hot paths call `invariant` with constant messages (no allocation); `fail` builds a detailed
// message only once something is already wrong.

export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant broken: ${message}`);
    this.name = 'RaftInvariantError';
  }
}

export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}

export function fail(message: string): never {
  throw new RaftInvariantError(message);
}
