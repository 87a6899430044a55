// The Docker, compose, Kubernetes and Grafana files, checked against the binary they deploy (no
// Docker engine or cluster runs here): every file parses, the Kubernetes objects validate against
// the Kubernetes 1.27 schemas (kubernetes-models), every environment variable, port, path and
// command is one fastpaca accepts (the environments are loaded with the real config loader), the
// pieces refer to each other correctly (seed → headless service, probes → health paths, volume →
// data dir), and every dashboard query reads series a running node exports. The container's
// command itself is started in test/deploy/binary.test.ts, which builds the binary it runs.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import { loadConfig } from '../../src/config/load-config.js';
import { optionKeys, options } from '../../src/config/options.js';
import { killAllProcessNodes, startProcessNode, type ProcessNode } from '../e2e/process-harness.js';
import {
  envPairs,
  execForm,
  exportedSeries,
  parseComposeFile,
  parseDockerfile,
  parseManifests,
  promqlLabelNames,
  promqlMetricNames,
  readRepoFile,
  repoFile,
  type ComposeService,
} from './deploy-files.js';

const optionEnvVars = new Set(optionKeys.map((key) => options[key].env));
const shutdownDefaultMs = options.shutdownTimeoutMs.default;

/** Loads an environment exactly as `serve` would; throws the loader's message if any value is bad. */
const expectValidEnvironment = (env: Readonly<Record<string, string>>): ReturnType<typeof loadConfig> => {
  for (const name of Object.keys(env))
    expect(optionEnvVars, `${name} is not a fastpaca option`).toContain(name);
  // Compose and Kubernetes hand every value to the process as a string, whatever YAML type it had.
  const strings = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, String(value)]));
  const loaded = loadConfig({ env: strings, flags: {}, cwd: '/' });
  expect(loaded.warnings).toEqual([]);
  return loaded;
};

/** A CLI command line (without the program) parses: `--help` on it exits 0. */
const expectCliCommand = async (args: readonly string[]): Promise<void> => {
  let stderr = '';
  const io: CliIo = { stdout: () => {}, stderr: (text) => void (stderr += text), env: {}, cwd: '/' };
  const code = await runCli([...args, '--help'], io, { serve: () => Promise.resolve(0) }, '0.0.0');
  expect(code, `fastpaca ${args.join(' ')}: ${stderr}`).toBe(0);
};

const seconds = (duration: string): number => {
  const match = /^(\d+)s$/.exec(duration);
  if (match === null) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(match[1]);
};

describe('docker/Dockerfile', () => {
  const instructions = parseDockerfile(readRepoFile('docker/Dockerfile'));
  const all = (keyword: string) => instructions.filter((each) => each.keyword === keyword);
  const last = (keyword: string) => all(keyword).at(-1)?.args ?? '';
  const runtimeStage = instructions.slice(instructions.findLastIndex((each) => each.keyword === 'FROM'));

  it('is multi-stage: builds with npm run dist and copies only the release into a slim runtime', () => {
    expect(all('FROM').length).toBeGreaterThanOrEqual(2);
    expect(all('RUN').some((each) => each.args.includes('npm ci'))).toBe(true);
    expect(all('RUN').some((each) => each.args.includes('npm run dist'))).toBe(true);
    expect(
      (JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> }).scripts['dist'],
    ).toBe('node scripts/build-dist.mjs');
    const copies = runtimeStage.filter((each) => each.keyword === 'COPY');
    expect(copies.map((each) => each.args)).toEqual(['--from=build /src/dist/release/ /opt/fastpaca/']);
    expect(runtimeStage.some((each) => each.keyword === 'RUN' && /\b(npm|node)\b/.test(each.args))).toBe(
      false,
    );
  });

  it('copies the script npm ci runs after installing (postinstall) before it runs npm ci', () => {
    const postinstall =
      (JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> }).scripts[
        'postinstall'
      ] ?? '';
    const script = /^node (\S+)$/.exec(postinstall)?.[1];
    expect(script).toBe('scripts/patch-uws.mjs');
    const npmCi = instructions.findIndex((each) => each.keyword === 'RUN' && each.args.includes('npm ci'));
    const copiesBefore = instructions.slice(0, npmCi).filter((each) => each.keyword === 'COPY');
    expect(
      copiesBefore.some((each) =>
        each.args
          .split(/\s+/)
          .slice(0, -1)
          .includes(script ?? ''),
      ),
    ).toBe(true);
  });

  it('runs as a non-root user with /data as the data volume and port 4000', () => {
    const user = last('USER');
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toMatch(/^\d+:\d+$/);
    expect(execForm(last('VOLUME'))).toEqual(['/data']);
    const env = Object.fromEntries(all('ENV').flatMap((each) => envPairs(each.args)));
    expect(env['FASTPACA_RAFT_DATA_DIR']).toBe('/data');
    const loaded = expectValidEnvironment(env);
    expect(loaded.config.port).toBe(4000);
    expect(last('EXPOSE').split(/\s+/)).toEqual([String(loaded.config.port), String(loaded.config.raftPort)]);
  });

  it('has a HEALTHCHECK, an ENTRYPOINT and a CMD the binary accepts', async () => {
    const healthcheck = last('HEALTHCHECK');
    const command = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4));
    const entrypoint = execForm(last('ENTRYPOINT'));
    expect(entrypoint).toEqual(['/opt/fastpaca/fastpaca']);
    expect(command[0]).toBe(entrypoint[0]);
    await expectCliCommand(command.slice(1));
    const cmd = execForm(last('CMD'));
    expect(cmd).toEqual(['serve']);
    await expectCliCommand(cmd);
  });

  it('keeps local state out of the build context', () => {
    const ignored = readRepoFile('.dockerignore').split('\n');
    for (const entry of ['node_modules', 'dist', 'priv', '.git']) expect(ignored).toContain(entry);
  });
});

describe('docker compose files', () => {
  const vars = { FASTPACA_API_KEY: 'k1', FASTPACA_CLUSTER_SECRET: 's'.repeat(32) };

  /** A fastpaca service: built from docker/Dockerfile, valid environment, /data and 4000 wired. */
  const checkNodeService = (name: string, service: ComposeService) => {
    expect(service.image, name).toBe('fastpaca:latest');
    expect(service.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(existsSync(repoFile('docker/Dockerfile'))).toBe(true);
    const loaded = expectValidEnvironment({ FASTPACA_RAFT_DATA_DIR: '/data', ...service.environment });
    // Protected mode would refuse every request from the bridge network without a key.
    expect(loaded.config.apiKeys).toEqual(['k1']);
    expect(service.volumes?.some((volume) => volume.endsWith(':/data'))).toBe(true);
    expect(service.ports?.every((port) => port.endsWith(`:${loaded.config.port}`))).toBe(true);
    expect(seconds(service.stop_grace_period ?? '0s') * 1000).toBeGreaterThan(shutdownDefaultMs);
    expect(service.depends_on?.['postgres']?.required).toBe(false);
    return loaded;
  };

  it('compose.yaml runs one node and refuses to start without an API key', () => {
    const file = parseComposeFile('docker/compose.yaml', vars);
    expect(Object.keys(file.services).sort()).toEqual(['fastpaca', 'postgres']);
    const loaded = checkNodeService('fastpaca', file.services['fastpaca'] as ComposeService);
    expect(loaded.config.clusterSeed).toEqual([]);
    expect(loaded.config.archiverEnabled).toBe(false);
    expect(() => parseComposeFile('docker/compose.yaml', {})).toThrow(/FASTPACA_API_KEY/);
  });

  it('compose.cluster.yaml runs three nodes whose seed names every node, with the secret required', () => {
    const file = parseComposeFile('docker/compose.cluster.yaml', vars);
    const nodes = Object.entries(file.services).filter(([name]) => name.startsWith('fastpaca-'));
    expect(nodes.map(([name]) => name)).toEqual(['fastpaca-1', 'fastpaca-2', 'fastpaca-3']);
    const names = new Set<string>();
    const publishedPorts = new Set<string>();
    for (const [name, service] of nodes) {
      const loaded = checkNodeService(name, service);
      expect(service.hostname).toBe(name);
      expect(loaded.config.nodeName).toBe(name);
      names.add(loaded.config.nodeName ?? '');
      for (const port of service.ports ?? []) publishedPorts.add(port.split(':')[0] ?? '');
      expect(loaded.config.clusterSeed).toEqual(
        nodes.map(([peer]) => ({ host: peer, port: loaded.config.port })),
      );
      expect(loaded.config.clusterSecret).toBe(vars.FASTPACA_CLUSTER_SECRET);
    }
    expect(names.size).toBe(3);
    expect(publishedPorts.size).toBe(3);
    expect(() => parseComposeFile('docker/compose.cluster.yaml', { FASTPACA_API_KEY: 'k' })).toThrow(
      /FASTPACA_CLUSTER_SECRET/,
    );
  });

  it('the optional Postgres turns the archiver on with a DATABASE_URL that reaches it', () => {
    for (const path of ['docker/compose.yaml', 'docker/compose.cluster.yaml']) {
      const file = parseComposeFile(path, {
        ...vars,
        FASTPACA_ARCHIVER_ENABLED: 'true',
        POSTGRES_PASSWORD: 'pw',
      });
      const postgres = file.services['postgres'] as ComposeService;
      expect(postgres.profiles).toEqual(['archiver']);
      for (const [name, service] of Object.entries(file.services)) {
        if (name === 'postgres') continue;
        const loaded = expectValidEnvironment({ ...service.environment });
        expect(loaded.config.archiverEnabled).toBe(true);
        expect(loaded.config.databaseUrl).toBe('postgres://fastpaca:pw@postgres:5432/fastpaca');
      }
      expect(postgres.environment?.['POSTGRES_PASSWORD']).toBe('pw');
    }
  });
});

describe('k8s manifests', () => {
  const files = ['configmap.yaml', 'secret.yaml', 'services.yaml', 'statefulset.yaml', 'pdb.yaml'];
  const objects = files.flatMap((file) => parseManifests(`k8s/${file}`));
  const find = (kind: string, name: string): Record<string, unknown> => {
    const found = objects.find(
      (each) => each['kind'] === kind && (each['metadata'] as { name: string }).name === name,
    );
    if (found === undefined) throw new Error(`no ${kind} ${name}`);
    return found;
  };
  // Narrow views of the objects the checks read (the schema validation below covers the rest).
  const statefulSet = find('StatefulSet', 'fastpaca') as unknown as StatefulSetView;
  const pod = statefulSet.spec.template.spec;
  const container = pod.containers[0] as ContainerView;
  const configMap = find('ConfigMap', 'fastpaca') as unknown as { data: Record<string, string> };
  const secret = find('Secret', 'fastpaca') as unknown as { stringData: Record<string, string> };

  /** The container's environment as the kubelet would give it (pod name fastpaca-0). */
  const containerEnv = (): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const source of container.envFrom) {
      expect(source.configMapRef.name).toBe('fastpaca');
      Object.assign(env, configMap.data);
    }
    for (const entry of container.env) {
      if (entry.value !== undefined) env[entry.name] = entry.value;
      else if (entry.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[entry.name] = 'fastpaca-0';
      else if (entry.valueFrom?.secretKeyRef !== undefined) {
        const ref = entry.valueFrom.secretKeyRef;
        expect(ref.name).toBe('fastpaca');
        const value = secret.stringData[ref.key];
        expect(value, `secret key ${ref.key}`).toBeDefined();
        env[entry.name] = value as string;
      } else throw new Error(`env ${entry.name} has no value this test understands`);
    }
    return env;
  };

  it('every object validates against the Kubernetes 1.27 schema', async () => {
    // A model's constructor takes its own typed shape; `never` accepts every one of them, and the
    // parsed object is handed over as is (validate() is the check).
    type ModelClass = new (data: never) => { validate(): void };
    const models: Record<string, () => Promise<ModelClass>> = {
      'v1/ConfigMap': async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap,
      'v1/Secret': async () => (await import('kubernetes-models/v1/Secret')).Secret,
      'v1/Service': async () => (await import('kubernetes-models/v1/Service')).Service,
      'apps/v1/StatefulSet': async () => (await import('kubernetes-models/apps/v1/StatefulSet')).StatefulSet,
      'policy/v1/PodDisruptionBudget': async () =>
        (await import('kubernetes-models/policy/v1/PodDisruptionBudget')).PodDisruptionBudget,
    };
    expect(objects.map((each) => each['kind']).sort()).toEqual([
      'ConfigMap',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
    for (const object of objects) {
      const model = models[`${String(object['apiVersion'])}/${String(object['kind'])}`];
      expect(model, `${String(object['apiVersion'])} ${String(object['kind'])}`).toBeDefined();
      const Model = await (model as () => Promise<ModelClass>)();
      expect(() => new Model(object as never).validate()).not.toThrow();
    }
  });

  it('the schema check has teeth: a wrong type is refused', async () => {
    const { StatefulSet } = await import('kubernetes-models/apps/v1/StatefulSet');
    const broken = structuredClone(statefulSet) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'three';
    expect(() => new StatefulSet(broken as never).validate()).toThrow(/replicas/);
  });

  it('kustomization.yaml lists every manifest and the dashboard', () => {
    const [kustomization] = parseManifests('k8s/kustomization.yaml') as [
      { resources: string[]; configMapGenerator: { files: string[] }[] },
    ];
    expect([...kustomization.resources].sort()).toEqual([...files].sort());
    const generated = kustomization.configMapGenerator.flatMap((each) => each.files);
    expect(generated).toEqual(['grafana/fastpaca-dashboard.json']);
    for (const file of generated) expect(existsSync(repoFile(`k8s/${file}`))).toBe(true);
  });

  it('a StatefulSet of 3 started in parallel, its volume the data directory', () => {
    expect(statefulSet.spec.replicas).toBe(3);
    expect(statefulSet.spec.podManagementPolicy).toBe('Parallel');
    const env = containerEnv();
    const loaded = expectValidEnvironment(env);
    const [claim] = statefulSet.spec.volumeClaimTemplates;
    const mount = container.volumeMounts.find((each) => each.name === claim?.metadata.name);
    expect(mount?.mountPath).toBe(loaded.config.dataDir);
    expect(loaded.config.dataDir).toBe('/data');
    expect(claim?.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(loaded.config.nodeName).toBe('fastpaca-0');
    expect(loaded.config.expectedClusterSize).toBe(statefulSet.spec.replicas);
    expect(loaded.config.apiKeys).toEqual([secret.stringData['api-key']]);
    expect(loaded.config.clusterSecret).toBe(secret.stringData['cluster-secret']);
  });

  it('the seed is the headless service, which publishes pods before they are ready', () => {
    const loaded = expectValidEnvironment(containerEnv());
    const headless = find('Service', statefulSet.spec.serviceName) as unknown as ServiceView;
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(loaded.config.clusterSeed).toEqual([
      { host: statefulSet.spec.serviceName, port: loaded.config.port },
    ]);
    const ports = Object.fromEntries(container.ports.map((port) => [port.name, port.containerPort]));
    expect(ports).toEqual({ http: loaded.config.port, raft: loaded.config.raftPort });
    for (const port of headless.spec.ports) expect(ports[port.targetPort]).toBe(port.port);
  });

  it('the client service and the PDB select the pods; the PDB allows one down', () => {
    const labels = statefulSet.spec.template.metadata.labels;
    expect(statefulSet.spec.selector.matchLabels).toEqual(labels);
    for (const service of objects.filter((each) => each['kind'] === 'Service') as unknown as ServiceView[]) {
      expect(service.spec.selector).toEqual(labels);
    }
    const client = find('Service', 'fastpaca') as unknown as ServiceView;
    expect(client.spec.clusterIP).toBeUndefined();
    expect(client.spec.ports.map((port) => port.targetPort)).toEqual(['http']);
    const pdb = find('PodDisruptionBudget', 'fastpaca') as unknown as {
      spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
    };
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
  });

  it('probes use the health endpoints; resources, non-root and the grace period are set', async () => {
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(container.resources.requests['cpu']).toMatch(/^\d+m?$/);
    expect(container.resources.requests['memory']).toMatch(/^\d+[MG]i$/);
    expect(container.resources.limits['memory']).toMatch(/^\d+[MG]i$/);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsUser);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(30);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(shutdownDefaultMs + 5_000);
    await expectCliCommand(container.args);
  });
});

interface ContainerView {
  readonly args: string[];
  readonly ports: { name: string; containerPort: number }[];
  readonly envFrom: { configMapRef: { name: string } }[];
  readonly env: {
    name: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
  }[];
  readonly volumeMounts: { name: string; mountPath: string }[];
  readonly resources: { requests: Record<string, string>; limits: Record<string, string> };
  readonly livenessProbe: { httpGet: unknown };
  readonly readinessProbe: { httpGet: unknown };
  readonly startupProbe: { httpGet: unknown };
}

interface StatefulSetView {
  readonly spec: {
    replicas: number;
    podManagementPolicy: string;
    serviceName: string;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        containers: ContainerView[];
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean; runAsUser: number; fsGroup: number };
      };
    };
    volumeClaimTemplates: { metadata: { name: string }; spec: { accessModes: string[] } }[];
  };
}

interface ServiceView {
  readonly spec: {
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: string }[];
  };
}

describe('k8s/grafana/fastpaca-dashboard.json', () => {
  let dataDir: string;
  let node: ProcessNode;
  let series: Map<string, Set<string>>;
  const dashboard = JSON.parse(readRepoFile('k8s/grafana/fastpaca-dashboard.json')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { query?: { query: string } | string }[] };
  };
  const queries = [
    ...dashboard.panels.flatMap((panel) =>
      panel.targets.map((target) => ({ title: panel.title, expr: target.expr })),
    ),
    ...dashboard.templating.list.flatMap((variable) =>
      typeof variable.query === 'object' ? [{ title: 'variable', expr: variable.query.query }] : [],
    ),
  ];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-dashboard-'));
    node = await startProcessNode({ dataDir, readyTimeoutMs: 40_000 });
    // One append, so the labelled series (role, source, status, outcome) have samples.
    const headers = { 'content-type': 'application/json' };
    await fetch(`${node.base}/v1/contexts/dash`, { method: 'PUT', headers, body: '{"token_budget":1000}' });
    const body = JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text: 'hello' }] } });
    const append = await fetch(`${node.base}/v1/contexts/dash/messages`, { method: 'POST', headers, body });
    expect(append.status).toBe(201);
    series = exportedSeries(await (await fetch(`${node.base}/metrics`)).text());
  }, 60_000);

  afterAll(() => {
    killAllProcessNodes();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('has panels with queries, and the query reader finds names in a known expression', () => {
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{node=~"$node"}[5m]))) / b',
      ),
    ).toEqual(['a_bucket', 'b']);
    expect(promqlLabelNames('sum by (le, route) (rate(a{node=~"$node"}[5m]))').sort()).toEqual([
      'le',
      'node',
      'route',
    ]);
  });

  it("the container's HEALTHCHECK command (fastpaca health) passes on a live node and fails on no node", async () => {
    const run = async (args: string[]): Promise<number> => {
      const io: CliIo = { stdout: () => {}, stderr: () => {}, env: { PORT: String(node.port) }, cwd: '/' };
      return runCli(args, io, { serve: () => Promise.resolve(1) }, '0.0.0');
    };
    expect(await run(['health'])).toBe(0);
    expect(await run(['health', '--ready'])).toBe(0);
    expect(await run(['health', '--url', 'http://127.0.0.1:1', '--timeout', '1000'])).toBe(1);
  });

  it('every query reads series the node exports, with labels those series carry', () => {
    expect(series.size).toBeGreaterThan(50);
    for (const { title, expr } of queries) {
      const names = promqlMetricNames(expr);
      expect(names.length, `${title}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        const labels = series.get(name);
        expect(labels, `${title}: ${name} is not exported`).toBeDefined();
        // A metric with no sample yet (a labelled counter nothing has counted) shows no labels.
        if (labels === undefined || labels.size === 0) continue;
        for (const label of promqlLabelNames(expr)) {
          if (label === 'le') expect(name.endsWith('_bucket'), `${title}: le on ${name}`).toBe(true);
          else expect(labels, `${title}: ${name} has no label ${label}`).toContain(label);
        }
      }
    }
  });
});
