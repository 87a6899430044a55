// A configuration problem found at start-up. The message always names the option, where its value
// came from and what was expected, so an operator can fix it without reading the source:
//   PORT=abc (env): must be an integer between 0 and 65535

/** Where an option's value came from, in precedence order (flag wins). */
export type ConfigSourceKind = 'flag' | 'env' | 'file' | 'default';

export class ConfigError extends Error {
  /** The config key (e.g. "port"), or undefined for problems not tied to one option. */
  readonly option: string | undefined;
  readonly source: ConfigSourceKind | undefined;

  constructor(message: string, options?: { option?: string; source?: ConfigSourceKind; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
    this.option = options?.option;
    this.source = options?.source;
  }
}

export const isConfigError = (error: unknown): error is ConfigError => error instanceof ConfigError;
