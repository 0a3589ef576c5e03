// Loaded with --import into a process the audit benchmark measures: at exit, it writes the
// process's peak resident set (getrusage's ru_maxrss, in KiB) to the file BENCH_MAX_RSS_FILE names.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_MAX_RSS_FILE;
if (file !== undefined) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
