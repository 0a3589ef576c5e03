// What the one-shot commands show a person at a terminal: colour only on a TTY and never with
// NO_COLOR (https://no-color.org), and log lines as plain text rather than pino's JSON. No
// dependencies: the CLI loads this at start, and the daemon never formats for a person.

const CODES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Style = keyof typeof CODES;

/** Colour for a stream: it is a terminal, and NO_COLOR is unset or empty. */
export function colourFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '';
}

export type Paint = (text: string, style: Style) => string;

export function painter(on: boolean): Paint {
  return on ? (text, style) => `\u001b[${CODES[style]}m${text}\u001b[0m` : (text) => text;
}

const STATUS_STYLE: Record<string, Style> = { pass: 'green', fail: 'red', unknown: 'yellow', waived: 'cyan', stale: 'yellow' };

/** A check outcome word (pass, FAIL, …) in its colour; the text is kept as given. */
export function paintStatus(paint: Paint, word: string): string {
  const style = STATUS_STYLE[word.toLowerCase()];
  return style === undefined ? word : paint(word, style);
}

/** Control characters shown escaped: a log field may hold text a collector sent. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_STYLE: Record<string, Style> = { trace: 'dim', debug: 'dim', info: 'cyan', warn: 'yellow', error: 'red', fatal: 'red' };
/** pino's own fields and the root logger's base: not news to the person reading. */
const QUIET_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service']);

function fieldText(value: unknown): string {
  if (typeof value === 'string') return printable(value);
  if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    const e = value as { message: string; code?: unknown };
    return printable(typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message);
  }
  return printable(JSON.stringify(value) ?? String(value));
}

/** One pino JSON line as `vcm-agent: warn: message (key value, …)`. */
export function humanLogLine(line: string, paint: Paint): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `vcm-agent: ${printable(line.trimEnd())}\n`;
  }
  const level = LEVEL_NAMES[entry.level as number] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([k]) => !QUIET_FIELDS.has(k))
    .map(([k, v]) => `${k} ${fieldText(v)}`);
  const msg = typeof entry.msg === 'string' ? printable(entry.msg) : '';
  return `vcm-agent: ${paint(level, LEVEL_STYLE[level] ?? 'bold')}: ${msg}${fields.length === 0 ? '' : ` (${fields.join(', ')})`}\n`;
}

/** A pino destination (anything with write) that turns each JSON line into a human one. */
export function humanLogStream(out: NodeJS.WriteStream, colour: boolean): { write(line: string): void } {
  const paint = painter(colour);
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line !== '') out.write(humanLogLine(line, paint));
    },
  };
}

/**
 * A CLI whose reader went away (`| head -n 1`) stops quietly, as Unix tools do, instead of
 * crashing on EPIPE with a stack trace. Shared by vcm-agent and vcm-collector.
 */
export function stopQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}
