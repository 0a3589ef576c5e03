// Loaded with --import into a process the audit benchmark measures: at exit, it writes the
// process's peak resident set, in KiB, to the file BENCH_MAX_RSS_FILE names. On Linux that is
// VmHWM from /proc/self/status, the peak of this program's own memory since it was started:
// getrusage's ru_maxrss would also count what the process held before exec, while it was still
// a copy of the benchmark that spawned it (820 MiB at a million envelopes, whatever ran after).
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_MAX_RSS_FILE;
function peakKiB() {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm !== null) return Number(hwm[1]);
  } catch {
    // not Linux: getrusage's figure
  }
  return process.resourceUsage().maxRSS;
}
if (file !== undefined) process.on('exit', () => writeFileSync(file, String(peakKiB())));
