// A small YAML writer for the rule and test files: maps, lists, strings, numbers and booleans.
// Strings are single-quoted (PromQL and templates stay readable), multi-line ones block literals.

export type Yaml = string | number | boolean | Yaml[] | { [key: string]: Yaml | undefined };

const PLAIN = /^[A-Za-z_][A-Za-z0-9_.:/-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(v: string | number | boolean, indent: string): string {
  if (typeof v !== 'string') return String(v);
  if (v.includes('\n')) return `|-\n${v.split('\n').map((l) => (l === '' ? '' : `${indent}  ${l}`)).join('\n')}`;
  if (PLAIN.test(v) && !RESERVED.test(v)) return v;
  return `'${v.replace(/'/g, "''")}'`;
}

function lines(v: Yaml, indent: string): string[] {
  if (Array.isArray(v)) {
    if (v.length === 0) return [`${indent}[]`];
    return v.flatMap((item) => {
      const inner = typeof item === 'object' ? lines(item, `${indent}  `) : [`${indent}  ${scalar(item, `${indent}  `)}`];
      return [`${indent}- ${inner[0]!.trimStart()}`, ...inner.slice(1)];
    });
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v).filter((e): e is [string, Yaml] => e[1] !== undefined);
    if (entries.length === 0) return [`${indent}{}`];
    return entries.flatMap(([k, val]) => {
      const key = `${indent}${scalar(k, indent)}:`;
      if (typeof val !== 'object') return [`${key} ${scalar(val, indent)}`];
      if (Array.isArray(val) && val.length === 0) return [`${key} []`];
      if (!Array.isArray(val) && Object.keys(val).length === 0) return [`${key} {}`];
      return [key, ...lines(val, Array.isArray(val) ? indent : `${indent}  `)];
    });
  }
  return [`${indent}${scalar(v, indent)}`];
}

export function toYaml(v: Yaml): string {
  return `${lines(v, '').join('\n')}\n`;
}
