// Readers for the deployment files the tests check: the Dockerfile's instructions, compose files
// with their ${VAR} interpolation, Kubernetes manifests, and the metric names a PromQL query uses.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const repoFile = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));

export const readRepoFile = (path: string): string => readFileSync(repoFile(path), 'utf8');

export interface DockerInstruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions in order: comments dropped, `\` continuations joined. */
export const parseDockerfile = (text: string): DockerInstruction[] => {
  const instructions: DockerInstruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const whole = `${pending}${line}`.trim();
    pending = '';
    const space = whole.indexOf(' ');
    instructions.push({ keyword: whole.slice(0, space).toUpperCase(), args: whole.slice(space + 1).trim() });
  }
  return instructions;
};

/** An exec-form (JSON array) argument list, as ENTRYPOINT, CMD and HEALTHCHECK CMD use. */
export const execForm = (args: string): string[] => {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item): item is string => typeof item === 'string')) {
    throw new Error(`not an exec-form list: ${args}`);
  }
  return parsed;
};

/** `ENV A=1 B=2` pairs (the unquoted key=value form the Dockerfile uses). */
export const envPairs = (args: string): [string, string][] =>
  args
    .split(/\s+/)
    .filter((pair) => pair !== '')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals <= 0) throw new Error(`ENV entry without =: ${pair}`);
      return [pair.slice(0, equals), pair.slice(equals + 1)];
    });

/**
 * Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}` from `vars`; a missing
 * required variable throws (as compose refuses to start).
 */
export const interpolate = (text: string, vars: Readonly<Record<string, string>>): string =>
  text.replace(
    /\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g,
    (_match, name: string, op?: string, rest?: string) => {
      const value = vars[name];
      if (value !== undefined && value !== '') return value;
      if (op === '?') throw new Error(`required variable ${name}: ${rest ?? ''}`);
      return op === '-' ? (rest ?? '') : '';
    },
  );

export const parseComposeFile = (path: string, vars: Readonly<Record<string, string>>): ComposeFile =>
  parseYaml(interpolate(readRepoFile(path), vars), { merge: true }) as ComposeFile;

export interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile: string };
  readonly hostname?: string;
  readonly ports?: readonly string[];
  readonly environment?: Readonly<Record<string, string>>;
  readonly volumes?: readonly string[];
  readonly profiles?: readonly string[];
  readonly stop_grace_period?: string;
  readonly depends_on?: Readonly<Record<string, { readonly required?: boolean }>>;
  readonly command?: readonly string[];
}

export interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly volumes?: Readonly<Record<string, unknown>>;
}

/** Every YAML document of a manifest file, as plain objects. */
export const parseManifests = (path: string): Record<string, unknown>[] =>
  parseAllDocuments(readRepoFile(path)).map((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0]?.message}`);
    return document.toJS() as Record<string, unknown>;
  });

const promqlWords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

/**
 * The metric names a PromQL expression reads: identifiers outside label matchers, grouping
 * clauses, ranges and strings that are not function calls or keywords.
 */
export const promqlMetricNames = (expr: string): string[] => {
  // Grafana's label_values(metric, label) names a metric and one of its labels.
  const labelValues = /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_]\w*\s*\)$/.exec(
    expr.trim(),
  );
  if (labelValues !== null) return [labelValues[1] as string];
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![$\w])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const word = match[1] as string;
    if (match[2] !== undefined || promqlWords.has(word) || /^\d/.test(word)) continue;
    names.add(word);
  }
  return [...names];
};

/** The label names an expression groups by or matches on. */
export const promqlLabelNames = (expr: string): string[] => {
  const labels = new Set<string>();
  const labelValues = /^label_values\(\s*[A-Za-z_:][A-Za-z0-9_:]*\s*,\s*([A-Za-z_]\w*)\s*\)$/.exec(
    expr.trim(),
  );
  if (labelValues !== null) labels.add(labelValues[1] as string);
  for (const group of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of (group[1] ?? '').split(',')) if (label.trim() !== '') labels.add(label.trim());
  }
  for (const matcher of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const pair of (matcher[1] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      labels.add(pair[1] as string);
    }
  }
  return [...labels];
};

/** Series names and their label names from Prometheus text, HELP/TYPE-only metrics included. */
export const exportedSeries = (text: string): Map<string, Set<string>> => {
  const series = new Map<string, Set<string>>();
  const add = (name: string): Set<string> => {
    const labels = series.get(name) ?? new Set<string>();
    series.set(name, labels);
    return labels;
  };
  for (const line of text.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)/.exec(line);
    if (typed !== null) {
      const [, name, type] = typed as unknown as [string, string, string];
      add(name);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) add(`${name}${suffix}`);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})?\s/.exec(line);
    if (sample === null) continue;
    const labels = add(sample[1] as string);
    for (const pair of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g))
      labels.add(pair[1] as string);
  }
  return series;
};
