import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_STATES, type AuditModel } from '../../../collector/audit/model.js';
import { findChromium, printPdf, renderReport } from '../../../collector/audit/report.js';
import { sampleModel } from '../../helpers/audit-model.js';
import { launchBrowser, requireChromium, type Browser, type PageVisit } from '../../helpers/chromium.js';

const SCRIPT = '<script>alert(1)</script>';
const ATTR = '"><img src=x onerror=alert(2)>';
const HOSTILE = `${SCRIPT}${ATTR}&amp;'`;

/** The sample, with hostile text in every free-text field the report shows. */
function hostileModel(): AuditModel {
  const m = sampleModel();
  m.vendor = `acme ${HOSTILE}`;
  m.generator = `gen ${HOSTILE}`;
  m.collector.origin = `origin ${HOSTILE}`;
  const badHost = `build-0${HOSTILE}`;
  for (const x of [...m.hosts, ...m.cells, ...m.failures, ...m.gaps]) if (x.agentId === m.hosts[0]!.agentId) x.hostname = badHost;
  m.hosts[0]!.os = `linux ${HOSTILE}`;
  m.hosts[0]!.agentVersion = `0.1.0 ${HOSTILE}`;
  m.exceptions[0]!.justification = `Needed for the token station ${HOSTILE}`;
  m.exceptions[0]!.approver = `ciso ${HOSTILE}`;
  m.exceptions[0]!.hosts = `build-1.* ${HOSTILE}`;
  m.exceptions[0]!.id = `usb ${HOSTILE}`;
  m.gaps[0]!.explanation = `dropped ${HOSTILE}`;
  m.silences.push({ agentId: m.hosts[1]!.agentId, hostname: `h ${HOSTILE}`, from: m.period.from, to: m.period.to, explanation: `reason ${HOSTILE}` });
  m.policyVersions[0]!.file.path = `policy/${HOSTILE}.json`;
  m.verification = {
    verified: false,
    by: `verifier ${HOSTILE}`,
    at: m.exportedAt,
    defects: [{ code: `AUD_X ${HOSTILE}`, message: `bad ${HOSTILE}`, file: `f ${HOSTILE}`, logIndex: 3, agentId: `a ${HOSTILE}`, seq: 9 }],
  };
  return m;
}

/** The document's text without tags (roughly what a reader sees), entities decoded. */
function textOf(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>/g, '')
    .replace(/<svg[\s\S]*?<\/svg>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

describe('audit report: HTML', () => {
  it('renders the same model to the same bytes, also when renders run at once', async () => {
    const a = await renderReport(sampleModel());
    const b = await renderReport(sampleModel());
    const [c, d] = await Promise.all([renderReport(sampleModel()), renderReport(sampleModel({ silent: true }))]);
    expect(a.length).toBeGreaterThan(10_000);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(await renderReport(sampleModel({ silent: true }))).toBe(d);
  });

  it('is self-contained: no script, no external resource, a CSP that forbids fetching anything', async () => {
    const html = await renderReport(sampleModel());
    expect(html).not.toMatch(/<script|<link|<img|<iframe|<object|<embed|@import/i);
    expect(html).not.toMatch(/\s(src|href)="(?!#)/i);
    expect(html).not.toMatch(/url\((?!#)/i);
    // The only URLs are the SVG namespaces, which are names, not fetched.
    expect(html.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, '')).not.toMatch(/https?:\/\//i);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`);
  });

  it('shows one chart per control, with the five states kept apart in fixed colours and a legend', async () => {
    const m = sampleModel();
    const html = await renderReport(m);
    const figures = [...html.matchAll(/<figure class="chart" data-control="([^"]+)">([\s\S]*?)<\/figure>/g)];
    expect(figures.map((f) => f[1])).toEqual(m.controls);
    const colours: Record<string, string> = { pass: '#2e7d32', fail: '#c62828', unknown: '#ef8f00', stale: '#757575', waived: '#6a3d9a' };
    expect(new Set(Object.values(colours)).size).toBe(5);
    for (const [, control, svg] of figures) {
      expect(svg!.match(/<svg/g)).toHaveLength(1);
      // The legend names all five states, whatever the data holds.
      for (const s of CONTROL_STATES) expect(svg).toContain(`>${s}</text>`);
      const bars = [...svg!.matchAll(/aria-roledescription="bar" d="[^"]+" fill="(#[0-9a-f]+)"/g)].map((b) => b[1]);
      expect(bars).toHaveLength(7 * (control === 'disk_encryption' || control === 'usb_policy' ? 2 : 1));
      if (control === 'disk_encryption') expect(new Set(bars)).toEqual(new Set([colours.pass, colours.fail]));
      else if (control === 'usb_policy') expect(new Set(bars)).toEqual(new Set([colours.pass, colours.waived]));
      else expect(new Set(bars)).toEqual(new Set([colours.pass]));
    }
    // Unknown and stale are drawn as themselves too, never as pass.
    const odd = sampleModel();
    odd.tallies = odd.tallies.map((t) => (t.control === 'vpn' ? { ...t, counts: { pass: 0, fail: 0, unknown: 1, waived: 0, stale: 2 } } : t));
    const vpn = /data-control="vpn">([\s\S]*?)<\/figure>/.exec(await renderReport(odd))![1]!;
    const fills = new Set([...vpn.matchAll(/aria-roledescription="bar" d="[^"]+" fill="(#[0-9a-f]+)"/g)].map((b) => b[1]));
    expect(fills).toEqual(new Set([colours.unknown, colours.stale]));
  });

  it('shows the header, the verification result, failures, gaps, waivers, policies and hosts', async () => {
    const m = sampleModel();
    const text = textOf(await renderReport(m));
    expect(text).toContain('Audit report: acme');
    expect(text).toContain('Verification: verified');
    expect(text).toContain('2026-11-01 00:00:00 UTC to 2026-11-08 00:00:00 UTC');
    expect(text).not.toContain('exported before the period ended');
    expect(text).toContain(m.collector.fingerprint);
    expect(text).toContain(m.log.end.rootHash);
    expect(text).toContain('vcm-collector 0.1.0');
    // The failure: 7 days less 2 hours, open, not waived.
    expect(text).toMatch(/build-0\.acme\.example \w+ disk_encryption 2026-11-01 01:00:00 UTC 2026-11-07 23:00:00 UTC 6 d 22 h open not waived/);
    expect(text).toContain('40–52 13 spool-drop record at seq 53');
    expect(text).toContain('Hardware token programming station; reviewed monthly. ciso@customer.example 2026-11-18 00:00:00 UTC 1 168');
    expect(text).toContain('policy/1.json');
    for (const h of m.hosts) expect(text).toContain(`${h.hostname} ${h.agentId} ${h.os} 0.1.0 2026-10-31 00:00:00 UTC not revoked`);
    expect(text).toMatch(/build-1\.acme\.example \w+ usb_policy waived 168 0 0 0 168/);
  });

  it('shows each defect of a failed verification, and says "not verified" when none ran', async () => {
    const m = sampleModel();
    m.verification = {
      verified: false,
      by: 'vcm-collector verify',
      at: m.exportedAt,
      defects: [
        { code: 'AUD_LOG_PROOF', message: 'inclusion proof does not match the checkpoint', file: 'log/entries.jsonl', logIndex: 41 },
        { code: 'AUD_ENVELOPE_SIG', message: 'signature does not verify', agentId: m.hosts[0]!.agentId, seq: 17 },
      ],
    };
    const text = textOf(await renderReport(m));
    expect(text).toContain('Verification: not verified — 2 defects');
    expect(text).toContain('AUD_LOG_PROOF inclusion proof does not match the checkpoint log/entries.jsonl 41 — —');
    expect(text).toContain(`AUD_ENVELOPE_SIG signature does not verify — — ${m.hosts[0]!.agentId} 17`);
    // The result comes before anything else the report says.
    expect(text.indexOf('Verification:')).toBeLessThan(text.indexOf('At a glance'));

    m.verification = null;
    const none = textOf(await renderReport(m));
    expect(none).toContain('Verification: not verified');
    expect(none).toContain('No verification was run for this bundle');
  });

  it('escapes every string from the model', async () => {
    const html = await renderReport(hostileModel());
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain(ATTR);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('Needed for the token station &lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&amp;amp;&#39;');
    // Decoded, the reader sees the text as it was.
    const text = textOf(html);
    for (const s of ['acme ', 'ciso ', 'reason ', 'dropped ', 'bad ', 'AUD_X ', 'linux ', 'build-0']) expect(text).toContain(`${s}${HOSTILE}`);
  });

  it('says plainly that no host sent anything in an empty period, and that the silence is the evidence', async () => {
    const m = sampleModel({ silent: true });
    const html = await renderReport(m);
    const text = textOf(html);
    expect(text).toContain('No host sent anything in this period (3 enrolled).');
    expect(text).toContain('This silence is itself the evidence');
    expect(text).toContain('No failures in the period.');
    expect(text.match(/unexplained/g)!.length).toBeGreaterThanOrEqual(3);
    expect(text).toContain('sent nothing');
    expect([...html.matchAll(/<figure class="chart"/g)]).toHaveLength(6);
    expect(textOf(await renderReport(sampleModel()))).not.toContain('No host sent anything');

    const nobody = sampleModel({ silent: true });
    nobody.hosts = [];
    nobody.cells = [];
    nobody.silences = [];
    nobody.tallies = [];
    expect(textOf(await renderReport(nobody))).toContain('No host was enrolled for this vendor, and none sent anything.');
  });

  it('says when the period had not ended at the export', async () => {
    const m = sampleModel({ ended: false });
    m.exportedAt = '2026-11-05T12:30:00.000Z';
    m.tallies = m.tallies.filter((t) => t.day <= '2026-11-05');
    const html = await renderReport(m);
    expect(textOf(html)).toMatch(/Not ended: exported before the period ended, up to 2026-11-05 12:30:00 UTC ?\./);
    // The charts stop at the export day: the days after it are not drawn as empty days of the period.
    const vpn = /data-control="vpn">([\s\S]*?)<\/figure>/.exec(html)![1]!;
    expect(vpn).toContain('2026-11-05');
    expect(vpn).not.toContain('>2026-11-06<');
  });

  it('printPdf says why instead of throwing when Chromium is missing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vcm-report-'));
    try {
      const html = path.join(dir, 'report.html');
      await writeFile(html, '<!DOCTYPE html><p>x</p>');
      const missing = await printPdf(html, path.join(dir, 'report.pdf'), { chromium: path.join(dir, 'no-such-chromium') });
      expect(missing.ok).toBe(false);
      expect(!missing.ok && missing.reason).toMatch(/Chromium not found: .*no-such-chromium/);
      // A path that is there but is no program.
      const notProgram = await printPdf(html, path.join(dir, 'report.pdf'), { chromium: html });
      expect(!notProgram.ok && notProgram.reason).toMatch(/not an executable file/);
      await expect(stat(path.join(dir, 'report.pdf'))).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('findChromium prefers $VCM_CHROMIUM', () => {
    const before = process.env.VCM_CHROMIUM;
    try {
      process.env.VCM_CHROMIUM = '/opt/chromium/chrome';
      expect(findChromium()).toBe('/opt/chromium/chrome');
      delete process.env.VCM_CHROMIUM;
      const found = findChromium();
      expect(found === null || /(chromium|chromium-browser|google-chrome)$/.test(found)).toBe(true);
    } finally {
      if (before === undefined) delete process.env.VCM_CHROMIUM;
      else process.env.VCM_CHROMIUM = before;
    }
  });
});

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).toString('latin1')).toBe('\x89PNG\r\n\x1a\n');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

interface PageFacts {
  text: string;
  charts: { control: string; svgs: number; width: number }[];
  scripts: number;
  bodyWidth: number;
}

const FACTS = `(() => ({
  text: document.body.innerText,
  charts: [...document.querySelectorAll('figure.chart')].map((f) => ({
    control: f.dataset.control,
    svgs: f.querySelectorAll('svg').length,
    width: f.querySelector('svg') ? f.querySelector('svg').getBoundingClientRect().width : 0,
  })),
  scripts: document.scripts.length,
  bodyWidth: document.body.getBoundingClientRect().width,
}))()`;

describe('audit report: in headless Chromium', () => {
  let chromium: string;
  let browser: Browser | undefined;
  let dir: string;
  let sampleFile: string;

  beforeAll(async () => {
    chromium = requireChromium();
    dir = await mkdtemp(path.join(tmpdir(), 'vcm-report-'));
    sampleFile = path.join(dir, 'report.html');
    await writeFile(sampleFile, await renderReport(sampleModel()));
    browser = await launchBrowser(chromium);
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function visit(file: string): Promise<{ page: PageVisit; facts: PageFacts }> {
    const page = await browser!.open(pathToFileURL(file).href);
    try {
      return { page, facts: await page.evaluate<PageFacts>(FACTS) };
    } finally {
      await page.close();
    }
  }

  it('sees console errors and network requests on a page that has them (the checks below can fail)', async () => {
    const file = path.join(dir, 'noisy.html');
    await writeFile(file, '<!DOCTYPE html><p>noisy</p><img src="http://127.0.0.1:9/x.png"><script>console.error("noisy page")</script>');
    const { page } = await visit(file);
    expect(page.console).toContainEqual(expect.objectContaining({ level: 'error', text: 'noisy page' }));
    expect(page.requests).toContain('http://127.0.0.1:9/x.png');
  });

  it('opens with no console message and no request but its own, one chart per control, and the verification result', async () => {
    const m = sampleModel();
    const { page, facts } = await visit(sampleFile);
    expect(page.console).toEqual([]);
    expect(page.requests).toEqual([pathToFileURL(sampleFile).href]);
    expect(facts.scripts).toBe(0);
    expect(facts.charts.map((c) => c.control)).toEqual(m.controls);
    for (const c of facts.charts) {
      expect(c.svgs).toBe(1);
      expect(c.width).toBeGreaterThan(300);
      expect(c.width).toBeLessThanOrEqual(facts.bodyWidth);
    }
    expect(facts.text).toContain('Verification: verified');
    expect(facts.text).toContain('No defects found.');
    expect(facts.text).toContain('Audit report: acme');
  });

  it('keeps hostile strings as text in the browser', async () => {
    const file = path.join(dir, 'hostile.html');
    await writeFile(file, await renderReport(hostileModel()));
    const { page, facts } = await visit(file);
    expect(page.console).toEqual([]);
    expect(page.requests).toEqual([pathToFileURL(file).href]);
    expect(facts.scripts).toBe(0);
    expect(facts.text).toContain(`Needed for the token station ${HOSTILE}`);
    expect(facts.text).toContain('Verification: not verified — 1 defect');
  });

  it('prints to A4 PDF pages (printPdf, then pdftoppm)', async () => {
    const pdf = path.join(dir, 'report.pdf');
    const started = Date.now();
    const r = await printPdf(sampleFile, pdf, { chromium, timeoutMs: 30_000 });
    expect(r).toEqual({ ok: true });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await readFile(pdf)).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const pngDir = path.join(dir, 'pages');
    await rm(pngDir, { recursive: true, force: true });
    await mkdir(pngDir);
    try {
      execFileSync('pdftoppm', ['-png', '-r', '72', pdf, path.join(pngDir, 'page')], { stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
      throw new Error(`pdftoppm (poppler-utils) is required to check the PDF: ${(err as Error).message}`);
    }
    const pages = (await readdir(pngDir)).filter((f) => f.endsWith('.png')).sort();
    expect(pages.length).toBeGreaterThanOrEqual(1);
    for (const p of pages) {
      const png = await readFile(path.join(pngDir, p));
      expect(png.length).toBeGreaterThan(5_000);
      // A4 at 72 dpi: 595 × 842.
      const { width, height } = pngSize(png);
      expect(Math.abs(width - 595)).toBeLessThanOrEqual(2);
      expect(Math.abs(height - 842)).toBeLessThanOrEqual(2);
    }
    // No header or footer: the file's URL is not printed on the page.
    const first = execFileSync('pdftotext', ['-l', '1', pdf, '-'], { stdio: 'pipe' }).toString();
    expect(first).toContain('Verification: verified');
    expect(first).not.toContain('file://');
  });

  it('printPdf gives up with a reason when Chromium takes longer than its timeout', async () => {
    const r = await printPdf(sampleFile, path.join(dir, 'slow.pdf'), { chromium, timeoutMs: 50 });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/did not finish printing within 50 ms/);
  });
});
