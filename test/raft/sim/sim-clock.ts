// Simulated time: milliseconds that advance only when the scheduler says so, handed to every host as
// its `now()` so request deadlines expire in simulated time and a seed replays exactly.

export class SimClock {
  private nowMs = 0;

  /** Bound so it can be passed as `RaftHostOptions.now` directly. */
  readonly now = (): number => this.nowMs;

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`time only moves forward, got ${ms}`);
    this.nowMs += ms;
  }
}
