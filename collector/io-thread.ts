// The filesystem store's I/O thread: journal appends, the evidence files of durable records and
// the checkpoint's flushes, with plain (synchronous) system calls on a thread of its own.
//
// Why a thread: on libuv's pool every system call is a job of its own, queued behind the
// signature checks that share that pool, and a promise on the main thread. A journal flush then
// waited behind a whole batch's checks before any of it could be acknowledged, and evidence files
// fell behind ingest: under load most of them were still owed when the load stopped. Here a
// request is one message each way, and none of them waits for signature checks.
//
// Appends come first: the thread makes files and flushes in small steps and, between two steps,
// takes any append that has arrived, so an acknowledgement never waits for a backlog of files.
import { Worker } from 'node:worker_threads';

/** What became of one file: made, already there (another process made it), or the system's error. */
export type MakeResult = 'made' | 'exists' | { code: string; message: string };

/** A failed append: `stage` says whether the bytes were being written or flushed. */
export type AppendError = Error & { code: string; stage: 'write' | 'flush' };

export interface Failure {
  code: string;
  message: string;
}

type Reply =
  | { op: 'append'; id: number; error?: Failure & { stage: 'write' | 'flush' } }
  | { op: 'done'; results: [id: number, result: MakeResult | Failure | null][] };

const LOST: Failure = { code: 'EIO', message: 'the I/O thread stopped' };

/** A failure from the thread as an Error with the system's code, as node:fs would throw it. */
export function failureError(f: Failure): Error & { code: string } {
  return Object.assign(new Error(f.message), { code: f.code });
}

/** Paths per flush request: one step of the thread's background work. */
const FLUSH_CHUNK = 64;

// Plain JavaScript, evaluated by the worker: the same source runs from the build and under tests.
//
// append: writes the bytes at the position and flushes them (fdatasync) before answering.
// file: written beside its name and linked in whole, so that a reader in another process (the
// CLI's export) never sees part of it; link() fails with EEXIST when the name is taken, so
// writes stay create-only. No flush: the record is durable in the journal, whose checkpoint
// flushes the file later.
// sync: flushes files (fdatasync) or folders (fsync); a path that is gone is skipped.
const WORKER_SOURCE = `
const { parentPort, receiveMessageOnPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const prefix = '.tmp-' + require('node:crypto').randomBytes(6).toString('hex') + '-';
let n = 0;
const failure = (err) => ({ code: typeof err.code === 'string' ? err.code : 'EIO', message: String(err.message) });

function makeFile(final, bytes) {
  const tmp = path.join(path.dirname(final), prefix + (n++).toString(36));
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, bytes);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, final);
      return 'made';
    } catch (err) {
      if (err.code === 'EEXIST') return 'exists';
      throw err;
    }
  } catch (err) {
    return failure(err);
  } finally {
    try {
      fs.unlinkSync(tmp);
    } catch {}
  }
}

function syncPaths(paths, full) {
  for (const p of paths) {
    let fd;
    try {
      fd = fs.openSync(p, 'r');
    } catch (err) {
      if (err.code === 'ENOENT') continue;
      return failure(err);
    }
    try {
      if (full) fs.fsyncSync(fd);
      else fs.fdatasyncSync(fd);
    } catch (err) {
      return failure(err);
    } finally {
      fs.closeSync(fd);
    }
  }
  return null;
}

function append(m) {
  let stage = 'write';
  try {
    for (let done = 0; done < m.bytes.length; ) done += fs.writeSync(m.fd, m.bytes, done, m.bytes.length - done, m.position + done);
    stage = 'flush';
    fs.fdatasyncSync(m.fd);
    parentPort.postMessage({ op: 'append', id: m.id });
  } catch (err) {
    parentPort.postMessage({ op: 'append', id: m.id, error: { ...failure(err), stage } });
  }
}

const queue = [];
let head = 0;
let scheduled = false;
function take(m) {
  if (m.op === 'append') append(m);
  else {
    for (const task of m.tasks) queue.push(task);
    if (!scheduled) {
      scheduled = true;
      setImmediate(work);
    }
  }
}
// Background work in steps of one task, answered in groups; appends that arrive meanwhile go first.
function work() {
  const results = [];
  const started = Date.now();
  while (head < queue.length && results.length < 64 && Date.now() - started < 20) {
    const task = queue[head];
    queue[head++] = undefined;
    results.push([task.id, task.final !== undefined ? makeFile(task.final, task.bytes) : syncPaths(task.paths, task.full)]);
    for (let m = receiveMessageOnPort(parentPort); m !== undefined; m = receiveMessageOnPort(parentPort)) take(m.message);
  }
  if (head === queue.length || head > 4096) {
    queue.splice(0, head);
    head = 0;
  }
  parentPort.postMessage({ op: 'done', results });
  scheduled = head < queue.length;
  if (scheduled) setImmediate(work);
}
parentPort.on('message', take);
`;

type Task = { id: number; final: string; bytes: Buffer } | { id: number; paths: string[]; full: boolean };

/**
 * A worker thread of the store's own, running `source`: started by the first message and again
 * after it is lost. It keeps the process alive only while `busy()` says requests wait; a thread
 * that dies calls `onLost`, which fails what was under way.
 */
export class OwnThread<Reply> {
  #worker: Worker | null = null;
  constructor(
    private readonly source: string,
    private readonly handlers: { onReply: (reply: Reply) => void; onLost: () => void; busy: () => boolean },
  ) {}

  /** Sends `message`, starting the thread if need be; throws when no thread can be started. */
  post(message: unknown): void {
    const worker = this.#start();
    worker.ref(); // work under way keeps the process alive; an idle thread does not
    worker.postMessage(message);
  }

  #start(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(this.source, { eval: true });
    worker.on('message', (reply: Reply) => {
      this.handlers.onReply(reply);
      if (!this.handlers.busy()) worker.unref();
    });
    const lost = () => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      this.handlers.onLost();
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    this.#worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker !== null) await worker.terminate();
  }
}

export class IoThread {
  #nextId = 1;
  /**
   * Answers awaited, by request id: an append's error (undefined when it is durable), a file's
   * MakeResult, a flush's Failure (null when done). A lost thread answers each with LOST.
   */
  readonly #waiting = new Map<number, (reply: MakeResult | Failure | null | undefined) => void>();
  /** Background tasks not yet sent: sent as one message once the current job is done (a microtask). */
  #tasks: Task[] = [];
  // A thread that died takes its work with it: every request under way fails (the store retries
  // files; a failed append fails its puts), and the next request starts a new thread.
  readonly #thread = new OwnThread<Reply>(WORKER_SOURCE, {
    onReply: (reply) => {
      if (reply.op === 'append') this.#answer(reply.id, reply.error);
      else for (const [id, result] of reply.results) this.#answer(id, result);
    },
    onLost: () => {
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const onReply of waiting) onReply(LOST);
    },
    busy: () => this.#waiting.size > 0,
  });

  /** Writes `bytes` at `position` of the open file `fd` and flushes them; rejects with an AppendError. */
  append(fd: number, bytes: Buffer, position: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#waiting.set(id, (error) => {
        if (error === undefined) return resolve();
        const e = error as Failure & { stage?: 'write' | 'flush' };
        // A thread lost mid-append leaves the file's state unknown: as a failed flush.
        reject(Object.assign(failureError(e), { stage: e.stage ?? 'flush' }) as AppendError);
      });
      this.#thread.post({ op: 'append', id, fd, bytes, position });
    });
  }

  /** Makes `final` with `bytes` unless it exists; never rejects (a failure is a result). */
  make(final: string, bytes: Buffer): Promise<MakeResult> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#waiting.set(id, (r) => resolve(r as MakeResult));
      this.#queue({ id, final, bytes });
    });
  }

  /** Flushes files (fdatasync) and then folders (fsync); a path that is gone is skipped. */
  async flush(files: readonly string[], dirs: readonly string[]): Promise<void> {
    await this.#sync(files, false);
    await this.#sync(dirs, true); // after the files: a folder entry is flushed once what it names is on disk
  }

  /** Flushes `paths` in steps of FLUSH_CHUNK, each a background task; rejects with the first failure. */
  #sync(paths: readonly string[], full: boolean): Promise<void[]> {
    const steps: Promise<void>[] = [];
    for (let i = 0; i < paths.length; i += FLUSH_CHUNK) {
      steps.push(
        new Promise((resolve, reject) => {
          const id = this.#nextId++;
          this.#waiting.set(id, (failure) => (failure === null ? resolve() : reject(failureError(failure as Failure))));
          this.#queue({ id, paths: paths.slice(i, i + FLUSH_CHUNK), full });
        }),
      );
    }
    return Promise.all(steps);
  }

  #queue(task: Task): void {
    if (this.#tasks.length === 0) {
      queueMicrotask(() => {
        const tasks = this.#tasks;
        this.#tasks = [];
        try {
          this.#thread.post({ op: 'tasks', tasks });
        } catch (err) {
          // No thread could be started: each task fails (files are retried), nothing is lost.
          for (const t of tasks) this.#answer(t.id, { code: 'EIO', message: `cannot start the I/O thread: ${(err as Error).message}` });
        }
      });
    }
    this.#tasks.push(task);
  }

  #answer(id: number, result: MakeResult | Failure | null | undefined): void {
    const onReply = this.#waiting.get(id);
    this.#waiting.delete(id);
    onReply?.(result);
  }

  /** Stops the thread; the store calls it once nothing is owed. */
  close(): Promise<void> {
    return this.#thread.close();
  }
}
