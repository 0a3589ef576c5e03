// The filesystem store's read thread: many whole files read in one request, with plain
// (synchronous) system calls on a thread of its own. The audit export reads every evidence file
// of a period, and evidence files are small (a few KiB).
//
// Why a thread: through libuv's pool, fs.readFile is four jobs per file (open, fstat, read,
// close), each queued, handed to a pool thread and answered on the main thread. For small files
// that hand-off costs more than the system calls: measured on 100,000 evidence files of the
// audit benchmark, with the page cache warm, 64 readFile calls in flight read 44,000 files/s,
// with 2.6 s of system time; one thread reading them one after another with openSync/readSync
// read 83,000/s, with 0.9 s. Its own thread also keeps these reads off the I/O thread
// (collector/io-thread.ts), whose journal appends must never wait behind them.
import { OwnThread, failureError, type Failure } from './io-thread.js';

type Reply = { id: number; data: Uint8Array; lengths: Int32Array } | { id: number; error: Failure };

// Plain JavaScript, evaluated by the worker: the same source runs from the build and under tests.
// Each file is read to its end into one growing buffer; its length is -1 when it does not exist
// (ENOENT, or ENOTDIR: a parent of the path is a file). The batch's bytes go back as one
// transferred buffer, not copied again.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
let scratch = Buffer.allocUnsafe(1 << 20);
function readAll(paths) {
  const lengths = new Int32Array(paths.length);
  let used = 0;
  for (let i = 0; i < paths.length; i++) {
    let fd;
    try {
      fd = fs.openSync(paths[i], 'r');
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
        lengths[i] = -1;
        continue;
      }
      throw err;
    }
    const start = used;
    try {
      for (;;) {
        if (used === scratch.length) {
          const bigger = Buffer.allocUnsafe(scratch.length * 2);
          scratch.copy(bigger, 0, 0, used);
          scratch = bigger;
        }
        const n = fs.readSync(fd, scratch, used, scratch.length - used, null);
        if (n === 0) break;
        used += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    lengths[i] = used - start;
  }
  const data = new Uint8Array(used);
  data.set(scratch.subarray(0, used));
  return { data, lengths };
}
parentPort.on('message', ({ id, paths }) => {
  try {
    const { data, lengths } = readAll(paths);
    parentPort.postMessage({ id, data, lengths }, [data.buffer, lengths.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: { code: typeof err.code === 'string' ? err.code : 'EIO', message: String(err.message) } });
  }
});
`;

const LOST: Failure = { code: 'EIO', message: 'the read thread stopped' };

export class ReadThread {
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (files: (Buffer | null)[]) => void; reject: (err: Error) => void }>();
  // A thread that died fails the reads under way; the next read starts a new one.
  readonly #thread = new OwnThread<Reply>(WORKER_SOURCE, {
    onReply: (reply) => this.#answer(reply),
    onLost: () => {
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const w of waiting) w.reject(failureError(LOST));
    },
    busy: () => this.#waiting.size > 0,
  });

  /**
   * The whole contents of each file, in order, or null for a file that does not exist. Rejects
   * with the system's error (an Error with its code, as node:fs throws) when one cannot be read.
   */
  read(paths: readonly string[]): Promise<(Buffer | null)[]> {
    if (paths.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#waiting.set(id, { resolve, reject });
      this.#thread.post({ id, paths });
    });
  }

  #answer(reply: Reply): void {
    const waiting = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    if (waiting === undefined) return;
    if ('error' in reply) return waiting.reject(failureError(reply.error));
    const data = Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
    const files: (Buffer | null)[] = [];
    let at = 0;
    for (const length of reply.lengths) {
      if (length < 0) files.push(null);
      else {
        files.push(data.subarray(at, at + length));
        at += length;
      }
    }
    waiting.resolve(files);
  }

  close(): Promise<void> {
    return this.#thread.close();
  }
}
