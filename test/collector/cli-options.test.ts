// Every command's --help is complete: each option says what it is, defaults in the unit users
// type, and every command that prints data takes --format table|json.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { program } from '../../collector/cli-program.js';

function commands(cmd: Command, prefix = ''): [string, Command][] {
  const name = `${prefix}${cmd.name()}`;
  return [[name, cmd], ...cmd.commands.flatMap((c) => commands(c, `${name} `))];
}

const all = commands(program);
/** Commands with subcommands only group them; serve and demo run, they print no data. */
const printing = all.filter(([name, c]) => c.commands.length === 0 && !['vcm-collector serve', 'vcm-collector demo'].includes(name));

describe('vcm-collector --help', () => {
  it('walks a tree of commands', () => {
    expect(printing.map(([n]) => n)).toContain('vcm-collector token create');
    expect(printing.length).toBeGreaterThan(10);
  });

  it('describes every option of every command', () => {
    const undescribed = all.flatMap(([name, c]) => c.options.filter((o) => o.description.trim() === '').map((o) => `${name} ${o.flags}`));
    expect(undescribed).toEqual([]);
  });

  it('shows durations in the unit users type', () => {
    const ttl = all.flatMap(([name, c]) => c.options.filter((o) => o.long === '--ttl').map((o) => [name, o.defaultValueDescription]));
    expect(ttl).toEqual([
      ['vcm-collector token create', '24h'],
      ['vcm-collector admin-token create', '90d'],
    ]);
  });

  it('gives every command that prints data --format table|json', () => {
    const missing = printing.filter(([, c]) => !c.options.some((o) => o.long === '--format' && JSON.stringify(o.argChoices) === '["table","json"]')).map(([n]) => n);
    expect(missing).toEqual([]);
  });
});
