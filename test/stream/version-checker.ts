// The oracle of the stream tests: the frames a subscriber received from `cursor` on must hold every
// version cursor+1 .. last exactly once, in order, each version's frames together (no gap, no
// duplicate, never backwards). Frames without a version (ping, gap, reset) are not versions.

export interface VersionedFrame {
  readonly type: string;
  readonly version?: number;
  readonly seq?: number;
}

/** What is wrong with `frames` as the versions cursor+1..last; [] when nothing is. */
export const versionProblems = (
  frames: readonly VersionedFrame[],
  cursor: number,
  last: number,
): string[] => {
  const problems: string[] = [];
  let current = cursor;
  const seenInVersion = new Set<string>();
  for (const [index, frame] of frames.entries()) {
    const version = frame.version;
    if (version === undefined) continue;
    if (version === current && current > cursor) {
      const key = `${frame.type}:${frame.seq ?? ''}`;
      if (seenInVersion.has(key)) problems.push(`frame #${index}: ${key} twice at version ${version}`);
      seenInVersion.add(key);
      continue;
    }
    if (version <= current) {
      problems.push(`frame #${index}: version ${version} again after ${current} (duplicate)`);
    } else {
      if (version > current + 1)
        problems.push(
          `frame #${index}: version ${version} after ${current} (gap: ${current + 1}..${version - 1} missing)`,
        );
      current = version;
      seenInVersion.clear();
      seenInVersion.add(`${frame.type}:${frame.seq ?? ''}`);
    }
  }
  if (current < last) problems.push(`versions ${current + 1}..${last} never arrived`);
  if (current > last) problems.push(`versions up to ${current} arrived, but the last is ${last}`);
  return problems;
};
