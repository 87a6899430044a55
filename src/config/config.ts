// The typed, validated configuration object: one property per option of options.ts. Optional
// options without a value are absent (never `undefined` placeholders).
import { Type, type Static, type TOptional, type TSchema } from '@sinclair/typebox';
import { optionKeys, options, type Options } from './options.js';

type SchemaOf<O> = O extends { readonly kind: { readonly schema: infer S extends TSchema } }
  ? O extends { readonly optional: true }
    ? TOptional<S>
    : S
  : never;

type ConfigProperties = { [K in keyof Options]: SchemaOf<Options[K]> };

const buildProperties = (): ConfigProperties => {
  const properties: Record<string, TSchema> = {};
  for (const key of optionKeys) {
    const option = options[key];
    properties[key] = 'optional' in option ? Type.Optional(option.kind.schema) : option.kind.schema;
  }
  // Safe: one entry per key of `options`, each built exactly as SchemaOf describes.
  return properties as ConfigProperties;
};

export const ConfigSchema = Type.Object(buildProperties(), { additionalProperties: false });

export type Config = Readonly<Static<typeof ConfigSchema>>;
