/**
 * A CRI v1 client for the tests: what kubelet sends to a container runtime, over gRPC on
 * the runtime's unix socket (@grpc/grpc-js, messages from ./cri-v1.proto). Field names
 * are the proto's (snake_case); int64 come back as numbers, enums as their names.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Options of every call: kubelet's default runtime request timeout is 2 minutes. */
const DEFAULT_DEADLINE_MS = 120_000;

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type MountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';

export interface CriMount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
  propagation?: MountPropagation;
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
      privileged?: boolean;
      run_as_user?: { value: number };
    };
    sysctls?: Record<string, string>;
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  mounts?: CriMount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  linux?: {
    resources?: { memory_limit_in_bytes?: number; cpu_shares?: number };
    security_context?: {
      privileged?: boolean;
      capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
      namespace_options?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
      run_as_user?: { value: number };
      readonly_rootfs?: boolean;
    };
  };
}

export interface PodSandboxStatus {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  created_at: number;
  network: { ip: string; additional_ips: { ip: string }[] } | null;
  runtime_handler: string;
}

export interface ContainerStatus {
  id: string;
  state: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
  exit_code: number;
  reason: string;
  message: string;
  log_path: string;
}

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type Method = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>) => void;

let loaded: grpc.GrpcObject | undefined;
function services(): { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } {
  if (!loaded) {
    const def = protoLoader.loadSync(path.join(__dirname, 'cri-v1.proto'), {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    loaded = grpc.loadPackageDefinition(def);
  }
  const v1 = (loaded.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return {
    RuntimeService: v1.RuntimeService as grpc.ServiceClientConstructor,
    ImageService: v1.ImageService as grpc.ServiceClientConstructor,
  };
}

/** A CRI error: the gRPC status with the runtime's message (e.g. a CNI plugin's failure). */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly grpcCode: number,
    readonly details: string,
  ) {
    super(`CRI ${method}: ${grpc.status[grpcCode] ?? grpcCode}: ${details}`);
    this.name = 'CriError';
  }
}

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly image: grpc.Client;

  /** `socket`: the runtime's unix socket path (containerd's [grpc] address). */
  constructor(readonly socket: string) {
    const { RuntimeService, ImageService } = services();
    const target = `unix:${socket}`;
    const opts = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
    this.runtime = new RuntimeService(target, grpc.credentials.createInsecure(), opts);
    this.image = new ImageService(target, grpc.credentials.createInsecure(), opts);
  }

  private call<T>(client: grpc.Client, method: string, req: unknown, deadlineMs = DEFAULT_DEADLINE_MS): Promise<T> {
    const fn = (client as unknown as Record<string, Method>)[method]!.bind(client);
    return new Promise((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) reject(new CriError(method, err.code, err.details));
        else resolve(res as T);
      });
    });
  }

  version(): Promise<{ version: string; runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    return this.call(this.runtime, 'Version', { version: 'v1' });
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>(this.runtime, 'RunPodSandbox', {
      config,
      runtime_handler: runtimeHandler,
    });
    return r.pod_sandbox_id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'RemovePodSandbox', { pod_sandbox_id: id });
  }

  /** The sandbox's status; `info` (verbose) is containerd's JSON with the netns path and pid. */
  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: Record<string, unknown> }> {
    const r = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>(
      this.runtime,
      'PodSandboxStatus',
      { pod_sandbox_id: id, verbose: true },
    );
    const info = r.info?.info ? (JSON.parse(r.info.info) as Record<string, unknown>) : {};
    return { status: r.status, info };
  }

  async listPodSandbox(): Promise<{ id: string; state: string; metadata: { name: string } }[]> {
    const r = await this.call<{ items: { id: string; state: string; metadata: { name: string } }[] }>(
      this.runtime,
      'ListPodSandbox',
      {},
    );
    return r.items;
  }

  async createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const r = await this.call<{ container_id: string }>(this.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config,
      sandbox_config: sandboxConfig,
    });
    return r.container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'StartContainer', { container_id: id });
  }

  async stopContainer(id: string, timeoutS = 10): Promise<void> {
    await this.call(this.runtime, 'StopContainer', { container_id: id, timeout: timeoutS });
  }

  async removeContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'RemoveContainer', { container_id: id });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const r = await this.call<{ status: ContainerStatus }>(this.runtime, 'ContainerStatus', { container_id: id });
    return r.status;
  }

  async execSync(
    id: string,
    cmd: string[],
    timeoutS = 30,
  ): Promise<{ stdout: string; stderr: string; exit_code: number }> {
    const r = await this.call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>(
      this.runtime,
      'ExecSync',
      { container_id: id, cmd, timeout: timeoutS },
      (timeoutS + 10) * 1000,
    );
    return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exit_code: r.exit_code };
  }

  async listImages(): Promise<{ id: string; repo_tags: string[] }[]> {
    const r = await this.call<{ images: { id: string; repo_tags: string[] }[] }>(this.image, 'ListImages', {});
    return r.images;
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
