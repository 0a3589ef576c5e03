// vpn: traffic leaves the host through the corporate tunnel. Judged from the effective state:
// which interfaces are tunnels and up, which routes win for the IPv4 and IPv6 internet, VPN
// service state, and optionally the egress address a probe URL reports.
import * as z from 'zod';
import { CheckError, isCheckError, type CheckErrorCode } from '../errors.js';
import { PLATFORMS, type Check, type CollectContext, type Evaluation, type HostIO, type Reason, type SourceDecl } from '../types.js';
import {
  addressIn,
  formatAddress,
  globMatches,
  makePrefix,
  parseAddress,
  parseCidr,
  parseIpv6,
  prefixContains,
  type Family,
  type Prefix,
} from './addresses.js';
import { parseIfconfig, parseNetstatRoutes, parsePsComm, parseScutilNcList } from './darwin.js';
import { interfaceFromSysfs, matchClient, otherTablesFromFibTrie, parseIpv6Route, parseProcNetRoute } from './linux.js';
import { parseAdapters, parseProcesses, parseRoutes, parseVpnConnections, WIN32_CLIENTS } from './win32.js';
import { verdict } from '../verdict.js';

// ---------------------------------------------------------------------------------------------
// Configuration (the policy settings of this check)

const cidr = z.string().refine((s) => parseCidr(s) !== null, { message: 'expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, with host bits clear' });

const probeUrl = z.string().refine(
  (u) => {
    try {
      const p = new URL(u);
      return p.protocol === 'https:' || p.protocol === 'http:';
    } catch {
      return false;
    }
  },
  { message: 'expected an http or https URL' },
);

export const configSchema = z
  .object({
    /** full: every default route leaves through the tunnel. split: only what splitAllowedCidrs allows leaves outside. */
    mode: z.enum(['full', 'split']).default('full'),
    /** Destinations that may be reached outside the tunnel in split mode (IPv4 and IPv6). */
    splitAllowedCidrs: z.array(cidr).default([]),
    /** Judge IPv6 routes too; false records them without judging. */
    requireIpv6Tunnelled: z.boolean().default(true),
    /** Extra interface-name globs (`*`, `?`) to treat as the corporate tunnel. */
    tunnelInterfaces: z.array(z.string().min(1)).default([]),
    egressProbe: z
      .object({
        url: probeUrl,
        /** Addresses the probe may report (the corporate egress ranges). */
        allowedCidrs: z.array(cidr).min(1),
        timeoutMs: z.number().int().min(100).max(60_000).default(5000),
      })
      .strict()
      .optional(),
  })
  .strict();
export type Config = z.output<typeof configSchema>;

// ---------------------------------------------------------------------------------------------
// Facts

const interfaceSchema = z
  .object({
    name: z.string(),
    /** Administratively up (Linux IFF_UP, macOS UP, Windows Status "Up"). */
    up: z.boolean(),
    /** Built-in classification: the kind of tunnel, or null when no built-in rule says tunnel. */
    tunnelKind: z.string().nullable(),
    /** What made it a tunnel (a sysfs attribute, a name pattern, a driver description). */
    evidence: z.string().nullable(),
    arpType: z.number().int().optional(),
    flags: z.string().optional(),
    operstate: z.string().optional(),
    devtype: z.string().nullable().optional(),
    tunFlags: z.string().nullable().optional(),
    description: z.string().optional(),
    ifIndex: z.number().int().optional(),
    status: z.string().optional(),
    componentId: z.string().nullable().optional(),
  })
  .strict();
export type NetInterface = z.output<typeof interfaceSchema>;

const routeSchema = z
  .object({
    family: z.enum(['ipv4', 'ipv6']),
    /** Canonical CIDR. */
    destination: z.string(),
    gateway: z.string().nullable(),
    /** null for a route without a device (blackhole). */
    interface: z.string().nullable(),
    ifIndex: z.number().int().optional(),
    /** Lower wins among equally specific routes; null where the platform shows none (macOS). */
    metric: z.number().int().nullable(),
    flags: z.string(),
    /** Unreachable, prohibit or blackhole: wins a lookup and sends nothing. */
    reject: z.boolean(),
    /** macOS RTF_IFSCOPE: used only by sockets bound to that interface. */
    scoped: z.boolean(),
  })
  .strict();
export type Route = z.output<typeof routeSchema>;

const vpnServiceSchema = z
  .object({
    name: z.string(),
    state: z.string(),
    type: z.string(),
    vpn: z.boolean(),
    enabled: z.boolean(),
    splitTunneling: z.boolean().nullable().optional(),
  })
  .strict();
export type VpnService = z.output<typeof vpnServiceSchema>;

const clientSchema = z.object({ client: z.string(), process: z.string(), pid: z.number().int().nullable() }).strict();
export type ClientMatch = z.output<typeof clientSchema>;

export const factsSchema = z
  .object({
    platform: z.enum(PLATFORMS),
    interfaces: z.array(interfaceSchema),
    routes: z.array(routeSchema),
    /** Optional sources that do not exist here (/proc/net/ipv6_route when IPv6 is disabled). */
    missingSources: z.array(z.string()),
    /** Linux: IPv4 routing tables besides main and local (policy routing), from /proc/net/fib_trie. */
    otherRouteTables: z
      .object({
        readable: z.boolean(),
        error: z.string().nullable(),
        tables: z.array(z.object({ table: z.number().int(), wide: z.array(z.string()) }).strict()),
      })
      .strict()
      .nullable(),
    /** macOS scutil --nc list, Windows Get-VpnConnection; null on Linux. */
    vpnServices: z.array(vpnServiceSchema).nullable(),
    /** Known VPN client processes: supporting evidence, never enough alone. */
    clients: z.object({ error: z.string().nullable(), found: z.array(clientSchema) }).strict(),
    probe: z
      .object({
        url: z.string(),
        httpStatus: z.number().int().nullable(),
        address: z.string().nullable(),
        error: z.object({ code: z.string(), message: z.string() }).strict().nullable(),
      })
      .strict()
      .nullable(),
  })
  .strict();
export type Facts = z.output<typeof factsSchema>;

// ---------------------------------------------------------------------------------------------
// Sources

const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';
const ps = (script: string): string[] => ['-NoProfile', '-NonInteractive', '-Command', script];

export const WIN32_SCRIPTS = {
  adapters:
    "$ErrorActionPreference = 'Stop'; @(Get-NetAdapter | Select-Object Name, InterfaceDescription, ifIndex, @{n='Status';e={[string]$_.Status}}, ComponentID) | ConvertTo-Json -Depth 5 -Compress",
  vpnConnections:
    "$ErrorActionPreference = 'Stop'; @(@(Get-VpnConnection) + @(Get-VpnConnection -AllUserConnection) | Select-Object Name, @{n='ConnectionStatus';e={[string]$_.ConnectionStatus}}, @{n='TunnelType';e={[string]$_.TunnelType}}, SplitTunneling) | ConvertTo-Json -Depth 5 -Compress",
  routes:
    "$ErrorActionPreference = 'Stop'; @(Get-NetRoute -PolicyStore ActiveStore | Where-Object { ($_.NextHop -ne '0.0.0.0' -and $_.NextHop -ne '::') -or ([int]($_.DestinationPrefix -split '/')[1] -le 4) } | Select-Object DestinationPrefix, NextHop, ifIndex, InterfaceAlias, RouteMetric, InterfaceMetric, @{n='AddressFamily';e={[string]$_.AddressFamily}}) | ConvertTo-Json -Depth 5 -Compress",
  processes: `@(Get-Process -Name ${WIN32_CLIENTS.map((c) => c.process).join(',')} -ErrorAction SilentlyContinue | Select-Object Name, Id) | ConvertTo-Json -Depth 5 -Compress`,
} as const;

const DARWIN = {
  ifconfig: { command: '/sbin/ifconfig', args: ['-a'] },
  netstat: { command: '/usr/sbin/netstat', args: ['-rn'] },
  scutil: { command: '/usr/sbin/scutil', args: ['--nc', 'list'] },
  ps: { command: '/bin/ps', args: ['-axo', 'comm'] },
} as const;

const linuxSources: readonly SourceDecl[] = [
  { kind: 'file', path: '/sys/class/net', why: 'the network interfaces' },
  { kind: 'file', path: '/sys/class/net/<if>/type', why: 'link type (512 is PPP)' },
  { kind: 'file', path: '/sys/class/net/<if>/flags', why: 'IFF_UP: whether the interface is up' },
  { kind: 'file', path: '/sys/class/net/<if>/operstate', why: 'link state, recorded as evidence' },
  { kind: 'file', path: '/sys/class/net/<if>/uevent', why: 'DEVTYPE (wireguard, ppp, xfrm)' },
  { kind: 'file', path: '/sys/class/net/<if>/tun_flags', why: 'present only on tun/tap devices: IFF_TUN marks a tunnel' },
  { kind: 'file', path: '/proc/net/route', why: 'IPv4 routes of the main table: which default wins' },
  { kind: 'file', path: '/proc/net/ipv6_route', why: 'IPv6 routes (absent when IPv6 is disabled)' },
  { kind: 'file', path: '/proc/net/fib_trie', why: 'IPv4 routing tables besides main (policy routing), prefixes only' },
  { kind: 'file', path: '/proc', why: 'process ids, to look for VPN client processes' },
  { kind: 'file', path: '/proc/<pid>/comm', why: 'process names, compared with known VPN clients (only matches are kept)' },
];

const darwinSources: readonly SourceDecl[] = [
  { kind: 'command', ...DARWIN.ifconfig, why: 'interfaces and their UP flag (utun, ipsec, ppp tunnels)' },
  { kind: 'command', ...DARWIN.netstat, why: 'IPv4 and IPv6 routes: which default wins and through which interface' },
  { kind: 'command', ...DARWIN.scutil, why: 'VPN services and their Connected/Disconnected state' },
  { kind: 'command', ...DARWIN.ps, why: 'executable names, compared with known VPN clients (only matches are kept)' },
];

const win32Sources: readonly SourceDecl[] = [
  { kind: 'command', command: POWERSHELL, args: ps(WIN32_SCRIPTS.adapters), why: 'network adapters, their driver description and status' },
  { kind: 'command', command: POWERSHELL, args: ps(WIN32_SCRIPTS.vpnConnections), why: 'built-in VPN connections and their state' },
  { kind: 'command', command: POWERSHELL, args: ps(WIN32_SCRIPTS.routes), why: 'active routes through a gateway and default-wide routes, with metrics' },
  { kind: 'command', command: POWERSHELL, args: ps(WIN32_SCRIPTS.processes), why: 'whether known VPN client processes run (only those names are asked for)' },
];

// ---------------------------------------------------------------------------------------------
// Collection

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CheckError('CHK_ERR_TIMEOUT', 'the vpn check ran out of time');
}

async function tryRead(io: HostIO, path: string): Promise<{ text: string } | { error: CheckErrorCode }> {
  try {
    return { text: await io.readFile(path) };
  } catch (err) {
    if (isCheckError(err)) return { error: err.code };
    throw err;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortRoutes(routes: Route[]): Route[] {
  return routes.sort(
    (a, b) =>
      cmp(a.family, b.family) ||
      cmp(a.destination, b.destination) ||
      (a.metric ?? -1) - (b.metric ?? -1) ||
      cmp(a.interface ?? '', b.interface ?? '') ||
      cmp(a.gateway ?? '', b.gateway ?? ''),
  );
}

function sortClients(found: ClientMatch[]): ClientMatch[] {
  const seen = new Set<string>();
  return found
    .sort((a, b) => cmp(a.client, b.client) || cmp(a.process, b.process) || (a.pid ?? -1) - (b.pid ?? -1))
    .filter((c) => {
      const key = JSON.stringify([c.client, c.process, c.pid]);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

async function collectLinux(ctx: CollectContext<Config>): Promise<Omit<Facts, 'probe'>> {
  const { io, signal } = ctx;
  const interfaces: NetInterface[] = [];
  // Interfaces are symlinks (or directories); regular files such as bonding_masters are not.
  const names = (await io.readDir('/sys/class/net')).filter((e) => e.type !== 'file').map((e) => e.name).sort(cmp);
  for (const name of names) {
    throwIfAborted(signal);
    const dir = `/sys/class/net/${name}`;
    const attrs: string[] = [];
    let vanished = false;
    for (const attr of ['type', 'flags', 'operstate']) {
      const r = await tryRead(io, `${dir}/${attr}`);
      if ('error' in r) {
        // An interface removed while we read it is simply not there any more.
        if (r.error === 'CHK_ERR_SOURCE_MISSING') {
          vanished = true;
          break;
        }
        throw new CheckError(r.error, `cannot read ${attr} of ${name}`, { subject: `${dir}/${attr}` });
      }
      attrs.push(r.text);
    }
    if (vanished) continue;
    const uevent = await tryRead(io, `${dir}/uevent`);
    const tunFlags = await tryRead(io, `${dir}/tun_flags`);
    interfaces.push(
      interfaceFromSysfs({
        name,
        type: attrs[0]!,
        flags: attrs[1]!,
        operstate: attrs[2]!,
        uevent: 'text' in uevent ? uevent.text : null,
        tunFlags: 'text' in tunFlags ? tunFlags.text : null,
      }),
    );
  }

  const routes = parseProcNetRoute(await io.readFile('/proc/net/route'));
  const missingSources: string[] = [];
  const v6 = await tryRead(io, '/proc/net/ipv6_route');
  if ('text' in v6) routes.push(...parseIpv6Route(v6.text));
  else if (v6.error === 'CHK_ERR_SOURCE_MISSING') missingSources.push('/proc/net/ipv6_route');
  else throw new CheckError(v6.error, 'cannot read IPv6 routes', { subject: '/proc/net/ipv6_route' });

  const trie = await tryRead(io, '/proc/net/fib_trie');
  const otherRouteTables =
    'text' in trie
      ? { readable: true, error: null, tables: otherTablesFromFibTrie(trie.text) }
      : { readable: false, error: trie.error, tables: [] };

  const found: ClientMatch[] = [];
  let clientsError: string | null = null;
  try {
    const pids = (await io.readDir('/proc')).filter((e) => /^\d+$/.test(e.name)).map((e) => Number(e.name)).sort((a, b) => a - b);
    for (const pid of pids) {
      throwIfAborted(signal);
      const comm = await tryRead(io, `/proc/${pid}/comm`);
      // Processes that exit meanwhile, or that we may not read, are skipped.
      if ('error' in comm) continue;
      const hit = matchClient(pid, comm.text);
      if (hit !== null) found.push(hit);
    }
  } catch (err) {
    if (!isCheckError(err) || err.code === 'CHK_ERR_TIMEOUT') throw err;
    clientsError = err.code;
  }

  return {
    platform: 'linux',
    interfaces,
    routes: sortRoutes(routes),
    missingSources,
    otherRouteTables,
    vpnServices: null,
    clients: { error: clientsError, found: sortClients(found) },
  };
}

async function runOk(io: HostIO, command: string, args: readonly string[], signal: AbortSignal): Promise<string> {
  const r = await io.run(command, args, { signal });
  if (r.exitCode !== 0) {
    const detail = r.stderr.trim().split('\n')[0]?.slice(0, 200) ?? '';
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `exited with ${r.exitCode}${detail === '' ? '' : `: ${detail}`}`, { subject: command });
  }
  return r.stdout;
}

async function optionalClients(run: () => Promise<string>, parse: (out: string) => ClientMatch[]): Promise<Facts['clients']> {
  try {
    return { error: null, found: sortClients(parse(await run())) };
  } catch (err) {
    if (!isCheckError(err) || err.code === 'CHK_ERR_TIMEOUT') throw err;
    return { error: err.code, found: [] };
  }
}

async function collectDarwin(ctx: CollectContext<Config>): Promise<Omit<Facts, 'probe'>> {
  const { io, signal } = ctx;
  const run = (c: { command: string; args: readonly string[] }) => runOk(io, c.command, c.args, signal);
  const interfaces = parseIfconfig(await run(DARWIN.ifconfig));
  const routes = parseNetstatRoutes(await run(DARWIN.netstat));
  const vpnServices = parseScutilNcList(await run(DARWIN.scutil));
  const clients = await optionalClients(() => run(DARWIN.ps), parsePsComm);
  return {
    platform: 'darwin',
    interfaces: interfaces.sort((a, b) => cmp(a.name, b.name)),
    routes: sortRoutes(routes),
    missingSources: [],
    otherRouteTables: null,
    vpnServices,
    clients,
  };
}

async function collectWin32(ctx: CollectContext<Config>): Promise<Omit<Facts, 'probe'>> {
  const { io, signal } = ctx;
  const run = (script: string) => runOk(io, POWERSHELL, ps(script), signal);
  const adapters = parseAdapters(await run(WIN32_SCRIPTS.adapters));
  const vpnServices = parseVpnConnections(await run(WIN32_SCRIPTS.vpnConnections));
  const routes = parseRoutes(await run(WIN32_SCRIPTS.routes));
  const clients = await optionalClients(() => run(WIN32_SCRIPTS.processes), parseProcesses);
  // A connected built-in (RAS) VPN is an interface named after the connection; Get-NetAdapter
  // does not always list it.
  const interfaces = [...adapters];
  for (const svc of vpnServices.filter((s) => s.state === 'Connected')) {
    const adapter = interfaces.find((i) => i.name.toLowerCase() === svc.name.toLowerCase());
    if (adapter === undefined) {
      interfaces.push({ name: svc.name, up: true, tunnelKind: 'ras-vpn', evidence: 'Get-VpnConnection: Connected' });
    } else if (adapter.tunnelKind === null) {
      adapter.tunnelKind = 'ras-vpn';
      adapter.evidence = 'Get-VpnConnection: Connected';
    }
  }
  return {
    platform: 'win32',
    interfaces: interfaces.sort((a, b) => cmp(a.name, b.name)),
    routes: sortRoutes(routes),
    missingSources: [],
    otherRouteTables: null,
    vpnServices,
    clients,
  };
}

/** The address a probe reports: plain text, or JSON with an `ip` field. Null when neither. */
export function parseProbeBody(body: string): string | null {
  const t = body.trim();
  let text = t;
  if (t.startsWith('{')) {
    try {
      const ip = (JSON.parse(t) as { ip?: unknown }).ip;
      if (typeof ip !== 'string') return null;
      text = ip;
    } catch {
      return null;
    }
  }
  const a = parseAddress(text);
  return a === null ? null : formatAddress(a.family, a.address);
}

async function probe(ctx: CollectContext<Config>): Promise<Facts['probe']> {
  const cfg = ctx.config.egressProbe;
  if (cfg === undefined) return null;
  try {
    const r = await ctx.io.httpGet(cfg.url, { timeoutMs: cfg.timeoutMs, signal: ctx.signal });
    if (r.status < 200 || r.status > 299) {
      return { url: cfg.url, httpStatus: r.status, address: null, error: { code: 'CHK_ERR_NETWORK', message: `the probe answered HTTP ${r.status}` } };
    }
    const address = parseProbeBody(r.body);
    if (address === null) {
      return { url: cfg.url, httpStatus: r.status, address: null, error: { code: 'CHK_ERR_PARSE', message: 'the probe answer holds no IP address' } };
    }
    return { url: cfg.url, httpStatus: r.status, address, error: null };
  } catch (err) {
    if (!isCheckError(err)) throw err;
    return { url: cfg.url, httpStatus: null, address: null, error: { code: err.code, message: err.message } };
  }
}

async function collect(ctx: CollectContext<Config>): Promise<Facts> {
  let base: Omit<Facts, 'probe'>;
  if (ctx.platform === 'linux') base = await collectLinux(ctx);
  else if (ctx.platform === 'darwin') base = await collectDarwin(ctx);
  else base = await collectWin32(ctx);
  return { ...base, probe: await probe(ctx) };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Fail codes of this check; README.md documents each one, and a test keeps the two equal. */
export const VPN_FAIL_CODES = {
  CHK_FAIL_NO_TUNNEL: 'no tunnel interface is up, and no VPN service is connected',
  CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL: 'a default route in use leaves outside the tunnel',
  CHK_FAIL_IPV6_BYPASS: 'IPv4 goes through the tunnel, but an IPv6 default route in use leaves outside it',
  CHK_FAIL_ROUTE_OUTSIDE_TUNNEL: 'a route through a gateway outside the tunnel reaches destinations the split policy does not allow',
  CHK_FAIL_EGRESS_NOT_ALLOWED: 'the egress address the probe saw is not in the allowed ranges',
} as const;
type FailCode = keyof typeof VPN_FAIL_CODES;

/**
 * The address space whose egress is judged, cut into /4 segments: the IPv4 unicast space
 * (0.0.0.0/4 to 208.0.0.0/4; 224/4 multicast and 240/4 reserved are left out) and the IPv6
 * global unicast space 2000::/3. /4 is fine enough for every way a VPN overrides the default:
 * 0.0.0.0/0, the 0.0.0.0/1 + 128.0.0.0/1 pair, ::/1 + 8000::/1, 2000::/3, 2000::/4 + 3000::/4.
 */
export const SEGMENTS: Record<Family, readonly Prefix[]> = {
  ipv4: Array.from({ length: 14 }, (_, i) => makePrefix('ipv4', BigInt(i) << 28n, 4)),
  ipv6: [makePrefix('ipv6', parseIpv6('2000::')!, 4), makePrefix('ipv6', parseIpv6('3000::')!, 4)],
};
const WIDE = 4;

type Where = 'tunnel' | 'outside' | 'unknown';

export function describeRoute(r: Route): string {
  const via = r.gateway === null ? '' : ` via ${r.gateway}`;
  const metric = r.metric === null ? '' : ` metric ${r.metric}`;
  return `${r.family} ${r.destination}${via} dev ${r.interface ?? '-'}${metric}`;
}

interface Parsed {
  route: Route;
  prefix: Prefix;
}

interface FamilyEgress {
  /** Chosen routes that send traffic, with the segments each one serves. */
  paths: Map<Route, Prefix[]>;
  /** Some segment is served by a non-reject route. */
  covered: boolean;
  /** Some segment chose a route outside the tunnel while a tunnel route for it lost. */
  shadowedTunnel: boolean;
}

function egressOf(family: Family, parsed: readonly Parsed[], where: (r: Route) => Where): FamilyEgress {
  const eligible = parsed.filter((p) => p.route.family === family && !p.route.scoped && p.prefix.length <= WIDE);
  const paths = new Map<Route, Prefix[]>();
  let shadowedTunnel = false;
  for (const seg of SEGMENTS[family]) {
    const candidates = eligible.filter((p) => prefixContains(p.prefix, seg));
    if (candidates.length === 0) continue;
    const longest = Math.max(...candidates.map((c) => c.prefix.length));
    const specific = candidates.filter((c) => c.prefix.length === longest);
    const best = Math.min(...specific.map((c) => c.route.metric ?? 0));
    const chosen = specific.filter((c) => (c.route.metric ?? 0) === best);
    for (const c of chosen) {
      if (c.route.reject) continue;
      const list = paths.get(c.route) ?? [];
      list.push(seg);
      paths.set(c.route, list);
    }
    const lostTunnel = candidates.some((c) => !chosen.includes(c) && !c.route.reject && where(c.route) === 'tunnel');
    if (lostTunnel && chosen.some((c) => !c.route.reject && where(c.route) === 'outside')) shadowedTunnel = true;
  }
  return { paths, covered: paths.size > 0, shadowedTunnel };
}

const LINK_LOCAL_OR_MULTICAST = ['169.254.0.0/16', '224.0.0.0/4', 'fe80::/10', 'ff00::/8'].map((c) => parseCidr(c)!);

function reason(code: FailCode | CheckErrorCode, message: string, subject?: string): Reason {
  return subject === undefined ? { code, message } : { code, message, subject };
}

export function evaluate(facts: Facts, config: Config): Evaluation {
  const caseInsensitive = facts.platform === 'win32';
  const byName = new Map(facts.interfaces.map((i) => [caseInsensitive ? i.name.toLowerCase() : i.name, i]));
  const ifaceOf = (name: string) => byName.get(caseInsensitive ? name.toLowerCase() : name);
  const configured = (name: string) => config.tunnelInterfaces.some((p) => globMatches(p, name, caseInsensitive));
  const isTunnelName = (name: string): Where => {
    if (configured(name)) return 'tunnel';
    const iface = ifaceOf(name);
    if (iface === undefined) return 'unknown';
    return iface.tunnelKind !== null ? 'tunnel' : 'outside';
  };
  const where = (r: Route): Where => (r.interface === null ? 'unknown' : isTunnelName(r.interface));

  const parsed: Parsed[] = [];
  for (const route of facts.routes) {
    const prefix = parseCidr(route.destination);
    if (prefix === null) return { status: 'unknown', reasons: [reason('CHK_ERR_PARSE', 'a route destination in the facts is not a CIDR', route.destination)] };
    parsed.push({ route, prefix });
  }

  const carriesRoutes = (name: string): boolean =>
    parsed.some((p) => p.route.interface === name && !p.route.scoped && !p.route.reject && !LINK_LOCAL_OR_MULTICAST.some((ll) => prefixContains(ll, p.prefix)));
  // macOS keeps utun interfaces up for its own services, so there a tunnel counts as up only
  // when it carries routes of its own.
  const tunnelUp =
    facts.interfaces.some((i) => i.up && isTunnelName(i.name) === 'tunnel' && (facts.platform !== 'darwin' || carriesRoutes(i.name))) ||
    (facts.vpnServices ?? []).some((s) => s.vpn && s.state === 'Connected');

  const allowed = config.splitAllowedCidrs.map((c) => parseCidr(c)!);
  const isAllowed = (p: Prefix) => config.mode === 'split' && allowed.some((a) => prefixContains(a, p));
  const families: Family[] = config.requireIpv6Tunnelled ? ['ipv4', 'ipv6'] : ['ipv4'];
  const egress = { ipv4: egressOf('ipv4', parsed, where), ipv6: egressOf('ipv6', parsed, where) };
  const inUse = families.some((f) => egress[f].covered);

  const fails: Reason[] = [];
  const unknowns: Reason[] = [];

  // Policy routing hides the table that wins: /proc/net/route shows only main, and
  // /proc/net/ipv6_route mixes all tables without naming them.
  const ambiguous = (family: Family): boolean =>
    facts.platform === 'linux' &&
    (family === 'ipv4' ? (facts.otherRouteTables?.tables ?? []).some((t) => t.wide.length > 0) : egress.ipv6.shadowedTunnel);

  if (!tunnelUp) {
    if (inUse) fails.push(reason('CHK_FAIL_NO_TUNNEL', VPN_FAIL_CODES.CHK_FAIL_NO_TUNNEL));
    else unknowns.push(reason('CHK_ERR_UNRESOLVED', 'no tunnel is up and no default route is in use: the host looks offline, which is no evidence either way'));
  } else {
    let ipv4Clean = egress.ipv4.covered;
    for (const family of families) {
      for (const [route, segments] of egress[family].paths) {
        const w = where(route);
        if (w === 'tunnel') continue;
        const subject = describeRoute(route);
        if (w === 'unknown') {
          unknowns.push(reason('CHK_ERR_UNRESOLVED', 'a default route leaves through an interface the check cannot find', subject));
          if (family === 'ipv4') ipv4Clean = false;
          continue;
        }
        if (segments.every(isAllowed)) continue;
        if (family === 'ipv4') ipv4Clean = false;
        if (ambiguous(family)) {
          unknowns.push(reason('CHK_ERR_UNRESOLVED', 'a default route leaves outside the tunnel, but policy routing (another routing table) may override it, and routing rules are not readable here', subject));
          continue;
        }
        const code: FailCode = family === 'ipv6' && ipv4Clean ? 'CHK_FAIL_IPV6_BYPASS' : 'CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL';
        fails.push(reason(code, VPN_FAIL_CODES[code], subject));
      }
    }
    if (config.mode === 'full' && !inUse) {
      unknowns.push(reason('CHK_ERR_UNRESOLVED', 'a tunnel is up but no default route is in use, so there is no egress to judge'));
    }
    if (config.mode === 'split') {
      // In use: the lowest metric among routes to the same destination.
      const best = new Map<string, number>();
      for (const p of parsed) {
        const key = `${p.route.family} ${p.route.destination}`;
        best.set(key, Math.min(best.get(key) ?? Infinity, p.route.metric ?? 0));
      }
      for (const p of parsed) {
        const r = p.route;
        if (!families.includes(r.family) || r.reject || r.scoped || r.gateway === null || p.prefix.length <= WIDE) continue;
        if ((r.metric ?? 0) !== best.get(`${r.family} ${r.destination}`)) continue;
        const w = where(r);
        if (w === 'tunnel' || isAllowed(p.prefix)) continue;
        if (w === 'unknown') unknowns.push(reason('CHK_ERR_UNRESOLVED', 'a route leaves through an interface the check cannot find', describeRoute(r)));
        else fails.push(reason('CHK_FAIL_ROUTE_OUTSIDE_TUNNEL', VPN_FAIL_CODES.CHK_FAIL_ROUTE_OUTSIDE_TUNNEL, describeRoute(r)));
      }
    }
  }

  const probeCfg = config.egressProbe;
  if (probeCfg !== undefined) {
    const p = facts.probe;
    if (p === null || p.url !== probeCfg.url) {
      unknowns.push(reason('CHK_ERR_UNRESOLVED', 'the policy asks for an egress probe of this URL and the facts hold none', probeCfg.url));
    } else if (p.error !== null) {
      unknowns.push({ code: p.error.code, message: `egress probe: ${p.error.message}`, subject: p.url });
    } else if (p.address !== null) {
      const a = parseAddress(p.address)!;
      const ok = probeCfg.allowedCidrs.some((c) => {
        const prefix = parseCidr(c)!;
        return prefix.family === a.family && addressIn(a.family, a.address, prefix);
      });
      if (!ok) fails.push(reason('CHK_FAIL_EGRESS_NOT_ALLOWED', VPN_FAIL_CODES.CHK_FAIL_EGRESS_NOT_ALLOWED, p.address));
    }
  }

  return verdict(fails, unknowns);
}

export const vpn: Check<Config, Facts> = {
  id: 'vpn',
  version: '1.0.0',
  title: 'Traffic leaves through the corporate VPN',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: linuxSources, darwin: darwinSources, win32: win32Sources },
  configSchema,
  factsSchema,
  collect,
  evaluate,
};
