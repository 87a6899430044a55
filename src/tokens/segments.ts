// Long texts are counted in segments, so that no single item a tokenizer worker takes costs much
// more than another: a 1 MiB message becomes ~32 segments that the pool interleaves with other
// requests' texts instead of one job that holds a worker (often the only one) for a second.
//
// A segment ends just before a space that follows a non-space character, where every tokenizer
// pattern we support starts a new piece (" word", " \n", " !"), so the sum of the segments' counts
// equals the whole text's count. Text with no such space near the target (one enormous run) is cut
// at the target, off any surrogate pair; such a run is counted in slices anyway (long-runs.ts).

/** How far back from a segment's target end to look for a space. */
const SPACE_SEARCH_UNITS = 1024;

const isSpaceBoundary = (text: string, at: number): boolean => {
  if (text.charCodeAt(at) !== 0x20) return false;
  // White space before the space would join it into one white-space piece.
  return !/\s/u.test(text[at - 1] ?? ' ');
};

const splitsSurrogatePair = (text: string, at: number): boolean => {
  const high = text.charCodeAt(at - 1);
  const low = text.charCodeAt(at);
  return high >= 0xd800 && high <= 0xdbff && low >= 0xdc00 && low <= 0xdfff;
};

/** `text` cut into consecutive segments of at most about `segmentLength` UTF-16 units. */
export const segmentText = (text: string, segmentLength: number): string[] => {
  if (text.length <= segmentLength) return [text];
  const segments: string[] = [];
  let start = 0;
  while (text.length - start > segmentLength) {
    const target = start + segmentLength;
    let end = target;
    const searchFloor = Math.max(start + 1, target - SPACE_SEARCH_UNITS);
    while (end > searchFloor && !isSpaceBoundary(text, end)) end--;
    if (end === searchFloor && !isSpaceBoundary(text, end)) end = target;
    if (splitsSurrogatePair(text, end)) end++;
    segments.push(text.slice(start, end));
    start = end;
  }
  segments.push(text.slice(start));
  return segments;
};
