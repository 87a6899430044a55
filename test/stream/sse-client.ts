// A Server-Sent Events reader for the tests (fetch with a streamed body): parses id/event/data into
// events as they arrive and waits (bounded) for conditions on them.

export interface SseEvent {
  readonly id?: string;
  readonly event: string;
  readonly data: { readonly type: string; readonly version?: number; readonly [field: string]: unknown };
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly ended: Promise<void>;

  private constructor(
    readonly status: number,
    body: ReadableStream<Uint8Array> | null,
    private readonly abort: AbortController,
  ) {
    this.ended = this.read(body);
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const response = await fetch(url, { headers, signal: abort.signal });
    const client = new SseClient(response.status, response.ok ? response.body : null, abort);
    if (!response.ok) await response.text();
    return client;
  }

  /** The id of the last event that carried one: what a reconnect sends as Last-Event-ID. */
  get lastEventId(): string | undefined {
    return this.events.filter((event) => event.id !== undefined).at(-1)?.id;
  }

  async until(done: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`sse client: ${what} not met within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.abort.abort();
  }

  private async read(body: ReadableStream<Uint8Array> | null): Promise<void> {
    if (body === null) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Aborted by close().
    }
  }

  private parse(block: string): void {
    let id: string | undefined;
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data += value;
    }
    if (data === '') return;
    this.events.push({
      ...(id === undefined ? {} : { id }),
      event,
      data: JSON.parse(data) as SseEvent['data'],
    });
  }
}
