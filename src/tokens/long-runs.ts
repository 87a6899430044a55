// Bounded BPE work per text. A tokenizer first splits text into pieces (a word, a run of
// punctuation, a run of white space) and then merges each piece's bytes pair by pair; that merge is
// quadratic in the piece's length, so one "word" of 1,000,000 letters costs minutes (measured: 598 s
// on a node, 0.1 s for 16,000 random letters, 4× more per doubling). Ordinary text never has such
// pieces, but a hostile or careless client can send one.
//
// `longRunCuts` finds runs that could form one long piece (letters and marks, other symbols, white
// space: the only classes the o200k and cl100k patterns let grow without bound; digits come in
// threes) and says where to cut the text so that the tokenizer sees them in slices:
// - a run of at most `exactRunMax` units is left whole while the text's budget of such units lasts,
//   so its count stays exact (the property tests prove runs of thousands of characters exact);
// - a longer run, or any run once the budget is spent, is cut every `sliceLength` units. Each cut can
//   change the count by a token or two (a merge across it is lost), never more.
// The work per text is then linear in its length plus at most `exactBudget` units of quadratic work.
//
// The function is self-contained (no imports, no outer names) because the tokenizer worker runs its
// source text (worker-source.ts), and the tests run it directly.

export interface LongRunLimits {
  /** Units (UTF-16) per slice of a run that is cut. */
  readonly sliceLength: number;
  /** The longest run counted whole. */
  readonly exactRunMax: number;
  /** Units of runs longer than `sliceLength` counted whole, per text. */
  readonly exactBudget: number;
}

export const longRunLimits: LongRunLimits = { sliceLength: 512, exactRunMax: 8192, exactBudget: 8192 };

/** Offsets at which to cut `text` before counting, ascending, each on a code point boundary. */
export function longRunCuts(text: string, limits: LongRunLimits): number[] {
  const cuts: number[] = [];
  if (text.length <= limits.sliceLength) return cuts;
  // One alternative per class; a mark (\p{M}) joins letters in o200k and symbols in cl100k, so it
  // belongs to both runs. `{n,}` finds only runs worth cutting, so ordinary text costs one scan.
  const longer = `{${limits.sliceLength + 1},}`;
  const runs = new RegExp(`[\\p{L}\\p{M}]${longer}|[^\\s\\p{L}\\p{N}]${longer}|\\s${longer}`, 'gu');
  let budget = limits.exactBudget;
  for (let match = runs.exec(text); match !== null; match = runs.exec(text)) {
    const start = match.index;
    const end = start + match[0].length;
    if (end - start <= limits.exactRunMax && end - start <= budget) {
      budget -= end - start;
      continue;
    }
    for (let cut = start + limits.sliceLength; cut < end; cut += limits.sliceLength) {
      // Never between the halves of a surrogate pair: both slices would hold a lone surrogate.
      const low = text.charCodeAt(cut);
      const high = text.charCodeAt(cut - 1);
      const splitsPair = low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff;
      cuts.push(splitsPair ? cut + 1 : cut);
      if (splitsPair) cut += 1;
    }
  }
  return cuts;
}
