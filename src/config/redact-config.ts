// The effective config as it may be logged or printed (`fastpaca config check`): secrets replaced,
// the database URL kept readable but without its password, the seed in its text form.
import { formatSeed } from './cluster-seed.js';
import type { Config } from './config.js';
import { optionKeys, options, type OptionSpec } from './options.js';

export const redacted = '<redacted>';

export const redactConfig = (config: Config): Record<string, unknown> => {
  const view: Record<string, unknown> = {};
  for (const key of optionKeys) {
    const value = config[key];
    if (value === undefined) continue;
    const option: OptionSpec = options[key];
    view[key] = option.secret === true ? redactSecret(key, value) : value;
  }
  view['clusterSeed'] = formatSeed(config.clusterSeed);
  return view;
};

const redactSecret = (key: string, value: unknown): unknown => {
  if (key === 'databaseUrl' && typeof value === 'string') return redactUrlPassword(value);
  if (Array.isArray(value)) return value.map(() => redacted);
  return redacted;
};

/** postgres://user:secret@host/db → postgres://user:<redacted>@host/db; unparsable URLs entirely. */
export const redactUrlPassword = (url: string): string => {
  try {
    const parsed = new URL(url);
    // libpq also accepts passwords as query parameters.
    for (const name of ['password', 'sslpassword']) {
      if (parsed.searchParams.has(name)) parsed.searchParams.set(name, 'redacted');
    }
    if (parsed.password !== '') parsed.password = 'redacted';
    return parsed.toString().replaceAll('redacted', redacted);
  } catch {
    return redacted;
  }
};
