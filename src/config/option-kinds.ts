// The value kinds a config option can have. Each kind pairs a TypeBox schema (what ajv validates)
// with the sentence that completes "must be ..." and a coercion from text: flags, environment
// variables and TOML strings all arrive as strings, and are parsed here the same way whatever their
// source, so `PORT=4000`, `--port 4000` and `port = 4000` mean the same thing.
import { Type, type TSchema } from '@sinclair/typebox';

/** What a coercion may consult: values of options resolved before this one. */
export interface CoerceContext {
  /** The resolved HTTP port, used by entries that omit a port (cluster seeds). */
  readonly port: number;
}

export interface OptionKind<S extends TSchema = TSchema> {
  readonly schema: S;
  /** Completes "must be ...", e.g. "an integer between 0 and 65535". */
  readonly expect: string;
  /**
   * Turns a raw value (a string from a flag or env, or a TOML value) into a candidate for the
   * schema. Returns the raw value unchanged when it cannot be read, so the schema rejects it.
   */
  readonly coerce: (raw: unknown, context: CoerceContext) => unknown;
  /** A semantic check beyond the schema; returns a problem ("must be ...") or undefined. */
  readonly check?: (value: unknown) => string | undefined;
}

const integerPattern = /^[+-]?\d+$/;

export const integer = (minimum: number, maximum: number): OptionKind<ReturnType<typeof integerSchema>> => ({
  schema: integerSchema(minimum, maximum),
  expect: `an integer between ${minimum} and ${maximum}`,
  coerce: (raw) => (typeof raw === 'string' && integerPattern.test(raw.trim()) ? Number(raw.trim()) : raw),
});

const integerSchema = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });

const booleanWords: ReadonlyMap<string, boolean> = new Map([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
  ['yes', true],
  ['no', false],
  ['on', true],
  ['off', false],
]);

export const boolean = (): OptionKind<ReturnType<typeof Type.Boolean>> => ({
  schema: Type.Boolean(),
  expect: 'true or false',
  coerce: (raw) => (typeof raw === 'string' ? (booleanWords.get(raw.trim().toLowerCase()) ?? raw) : raw),
});

export const text = (options: {
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly expect: string;
  readonly check?: (value: unknown) => string | undefined;
}): OptionKind<ReturnType<typeof Type.String>> => ({
  schema: Type.String({
    minLength: options.minLength ?? 1,
    ...(options.maxLength === undefined ? {} : { maxLength: options.maxLength }),
    ...(options.pattern === undefined ? {} : { pattern: options.pattern }),
  }),
  expect: options.expect,
  coerce: (raw) => raw,
  ...(options.check === undefined ? {} : { check: options.check }),
});

/** One of a fixed set of words (case-insensitive on input); an `enum` schema keeps the literal type. */
export const oneOf = <const V extends readonly [string, ...string[]]>(
  values: V,
): OptionKind<ReturnType<typeof Type.Unsafe<V[number]>>> => ({
  schema: Type.Unsafe<V[number]>({ type: 'string', enum: [...values] }),
  expect: `one of ${values.join(', ')}`,
  coerce: (raw) => (typeof raw === 'string' ? raw.trim().toLowerCase() : raw),
});

/** Splits "a, b,,c" into ["a", "b", "c"]: the comma-separated form of env vars and flags. */
export const splitList = (raw: string): string[] =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

/** A list of non-empty strings without whitespace: a TOML array, or one comma-separated string. */
export const stringList = (expect: string): OptionKind<ReturnType<typeof stringListSchema>> => ({
  schema: stringListSchema(),
  expect,
  coerce: (raw) => (typeof raw === 'string' ? splitList(raw) : raw),
});

const stringListSchema = () => Type.Array(Type.String({ minLength: 1, pattern: '^\\S+$' }), { maxItems: 64 });
