// The Okta org URL, on its own: the agent's config validates it too, and must not load the rest of
// sso_coverage's schemas to do so (every command reads the config, `status` and `--help` included).
import * as z from 'zod';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * The org URL as an origin without a trailing slash (`https://acme.okta.com/` becomes
 * `https://acme.okta.com`). Paths, queries and credentials are refused; plain HTTP only on loopback.
 */
export const orgUrlSchema = z
  .string()
  .trim()
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'orgUrl must be an absolute URL' });
      return;
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname))) {
      ctx.addIssue({ code: 'custom', message: 'orgUrl must use https (http only on loopback)' });
    }
    if (u.username !== '' || u.password !== '') ctx.addIssue({ code: 'custom', message: 'orgUrl must not carry credentials' });
    if (u.pathname !== '/' || u.search !== '' || u.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'orgUrl must be the org origin only, like https://acme.okta.com' });
    }
  })
  .transform((s) => new URL(s).origin);
