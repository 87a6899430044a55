// How the resolved configuration is shown to an operator (`config check`, the startup log line):
// secrets redacted, and where each value came from.
import type { LoadedConfig, ResolvedSource } from '../config/load-config.js';
import { redactConfig } from '../config/redact-config.js';

/** "flag --port", "env PORT", "file ./fastpaca.toml port", "default" or "default (port + 1000)". */
export const describeOrigin = (source: ResolvedSource): string => {
  switch (source.kind) {
    case 'flag':
    case 'env':
      return `${source.kind} ${source.name}`;
    case 'file':
      return `file ${source.detail ?? ''} ${source.name}`;
    case 'default':
      return source.detail === undefined ? 'default' : `default (${source.detail})`;
  }
};

/** The origin of every option with a value, optionally leaving out the defaults. */
export const configOrigins = (
  loaded: LoadedConfig,
  options: { readonly includeDefaults: boolean },
): Record<string, string> => {
  const view: Record<string, string> = {};
  for (const [key, source] of loaded.sources) {
    if (source.kind === 'default' && !options.includeDefaults) continue;
    view[key] = describeOrigin(source);
  }
  return view;
};

/** The `config check` document: the effective config (secrets redacted) and each value's origin. */
export const renderConfigCheck = (loaded: LoadedConfig): string =>
  `${JSON.stringify(
    { config: redactConfig(loaded.config), origins: configOrigins(loaded, { includeDefaults: true }) },
    null,
    2,
  )}\n`;
