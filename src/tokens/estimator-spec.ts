// FASTPACA_TOKEN_ESTIMATOR: "chars4", or "tiktoken:<model>" with the model mapped to its encoding
// exactly as js-tiktoken maps it (gpt-4o, gpt-4.1, gpt-5, o1, o3, o4-mini → o200k_base; gpt-4 and
// gpt-3.5 → cl100k_base). Only those two encodings are supported: they are the ones whose counts we
// prove identical to js-tiktoken (test/tokens), and every current chat model uses one of them.
import { getEncodingNameForModel, type TiktokenModel } from 'js-tiktoken/lite';

export const supportedEncodings = ['o200k_base', 'cl100k_base'] as const;
export type SupportedEncoding = (typeof supportedEncodings)[number];

export type EstimatorSpec =
  | { readonly kind: 'chars4' }
  | { readonly kind: 'tiktoken'; readonly model: string; readonly encoding: SupportedEncoding };

export type ParsedEstimatorSpec =
  { readonly ok: true; readonly spec: EstimatorSpec } | { readonly ok: false; readonly problem: string };

const isSupported = (encoding: string): encoding is SupportedEncoding =>
  (supportedEncodings as readonly string[]).includes(encoding);

/** js-tiktoken's encoding name for `model`, or undefined for a model it does not know. */
export const encodingForModel = (model: string): string | undefined => {
  try {
    // The cast is the point of the call: we ask js-tiktoken whether it knows this string.
    return getEncodingNameForModel(model as TiktokenModel);
  } catch {
    return undefined;
  }
};

export const parseEstimatorSpec = (text: string): ParsedEstimatorSpec => {
  if (text === 'chars4') return { ok: true, spec: { kind: 'chars4' } };
  if (!text.startsWith('tiktoken:')) {
    return { ok: false, problem: 'must be "chars4" or "tiktoken:<model>" (e.g. tiktoken:gpt-4o)' };
  }
  const model = text.slice('tiktoken:'.length);
  const encoding = encodingForModel(model);
  if (encoding === undefined) {
    return {
      ok: false,
      problem: `names an unknown model "${model}" (try tiktoken:gpt-4o or tiktoken:gpt-4)`,
    };
  }
  if (!isSupported(encoding)) {
    return {
      ok: false,
      problem: `names model "${model}", whose encoding ${encoding} is not supported (supported: ${supportedEncodings.join(', ')})`,
    };
  }
  return { ok: true, spec: { kind: 'tiktoken', model, encoding } };
};
