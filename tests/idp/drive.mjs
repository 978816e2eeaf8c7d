#!/usr/bin/env node
// Reference "browser + user" for the test IdP in server.mjs. Rust tests
// reimplement exactly these requests with reqwest (see README.md).
//
//   node drive.mjs auth   <authorization-url> <username> [--deny] [--verbose]
//       Plays the browser from the authorization URL the CLI would open, signs
//       in as <username>, allows (or denies) consent, and finally GETs the
//       loopback redirect URI so the CLI's listener receives ?code=...&state=...
//       stdout: {"redirect":"http://127.0.0.1:PORT/callback?code=...","status":200}
//
//   node drive.mjs device <verification_uri_complete> <username> [--deny] [--verbose]
//   node drive.mjs device <verification_uri> <username> --user-code CODE
//       Plays the user on a second device: enters/confirms the user code,
//       signs in, allows consent. stdout: {"result":"approved"}, or
//       {"result":"denied"|"error","error":"<message shown to the user>"}
//
// Uses only node built-ins (global fetch). Every request is made with
// redirect: 'manual' and a minimal path-aware cookie jar, so the transcript
// (stderr, with --verbose) shows each hop.

import { parseArgs } from 'node:util';

class CookieJar {
  #cookies = new Map(); // `${name}\0${path}` -> { name, value, path }

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') path = v.trim();
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
      }
      const id = `${name}\0${path}`;
      if (expired || value === '') this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

function unescapeHtml(s) {
  return s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e) => ({
    amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'",
  })[e]);
}

// First <form ...action="..."> and its hidden inputs (all oidc-provider forms
// render `<input type="hidden" name="N" value="V"/>`).
function parseForm(html) {
  const action = /<form[^>]*\saction="([^"]*)"/i.exec(html)?.[1];
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) {
    fields[m[1]] = unescapeHtml(m[2]);
  }
  return { action: action && unescapeHtml(action), fields };
}

export class Browser {
  constructor({ verbose = false } = {}) {
    this.jar = new CookieJar();
    this.verbose = verbose;
  }

  log(msg) {
    if (this.verbose) process.stderr.write(`${msg}\n`);
  }

  async request(method, url, form) {
    const headers = {};
    const cookie = this.jar.header(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.jar.store(res);
    const text = await res.text();
    const location = res.headers.get('location');
    this.log(`${method} ${url}${body ? `  [${body}]` : ''}${cookie ? `  (cookies: ${cookie.split('; ').map((c) => c.split('=')[0]).join(',')})` : ''}\n  -> ${res.status}${location ? ` Location: ${location}` : ''}${res.headers.get('x-idp-prompt') ? ` x-idp-prompt: ${res.headers.get('x-idp-prompt')}` : ''}${res.headers.get('x-idp-page') ? ` x-idp-page: ${res.headers.get('x-idp-page')}` : ''}`);
    return {
      status: res.status,
      location: location && new URL(location, url).href,
      prompt: res.headers.get('x-idp-prompt'),
      page: res.headers.get('x-idp-page'),
      text,
      url,
    };
  }

  // Follows redirects within the IdP and answers the login/consent pages.
  // Stops at the first redirect leaving the IdP origin (the loopback redirect
  // URI), which it then GETs as a browser would, or at the device success page.
  async run(startUrl, username, { deny = false, first = ['GET', undefined] } = {}) {
    const origin = new URL(startUrl).origin;
    let res = await this.request(first[0], startUrl, first[1]);
    for (let hop = 0; hop < 20; hop += 1) {
      if (res.status >= 300 && res.status < 400 && res.location) {
        if (new URL(res.location).origin !== origin) {
          const cb = await this.request('GET', res.location);
          return { redirect: res.location, status: cb.status, body: cb.text };
        }
        res = await this.request('GET', res.location);
      } else if (res.status === 200 && res.prompt === 'login') {
        res = await this.request('POST', `${res.url.replace(/\/$/, '')}/login`, { login: username });
        if (res.status === 401) throw new Error(`login rejected for ${username}`);
      } else if (res.status === 200 && res.prompt === 'consent') {
        res = await this.request('POST', `${res.url.replace(/\/$/, '')}/${deny ? 'abort' : 'confirm'}`, {});
      } else if (res.status === 200 && res.page === 'device-success') {
        return { result: 'approved' };
      } else if (res.page === 'device-input-error') {
        // device flow ended with an error page (denied consent, expired/unknown code, ...)
        const error = unescapeHtml(/<p id="error">([^<]*)<\/p>/.exec(res.text)?.[1] ?? 'unknown');
        return { result: /aborted|denied/i.test(error) ? 'denied' : 'error', error };
      } else if (res.status === 200 && /name="xsrf"/.test(res.text)) {
        // device flow: auto-submit page from verification_uri_complete, or the
        // "confirm" page (its hidden fields include confirm=yes)
        const { action, fields } = parseForm(res.text);
        res = await this.request('POST', new URL(action, res.url).href, fields);
      } else {
        throw new Error(`unexpected response ${res.status} from ${res.url}: ${res.text.slice(0, 500)}`);
      }
    }
    throw new Error('too many hops');
  }

  authorize(authorizationUrl, username, opts) {
    return this.run(authorizationUrl, username, opts);
  }

  async device(verificationUri, username, { userCode, deny } = {}) {
    if (!userCode) return this.run(verificationUri, username, { deny });
    // verification_uri + user_code: GET the input page for the xsrf token, then POST the code.
    const input = await this.request('GET', verificationUri);
    const { action, fields } = parseForm(input.text);
    return this.run(new URL(action, verificationUri).href, username, {
      deny, first: ['POST', { ...fields, user_code: userCode }],
    });
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      deny: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      'user-code': { type: 'string' },
    },
  });
  const [mode, url, username] = positionals;
  if (!['auth', 'device'].includes(mode) || !url || !username) {
    process.stderr.write('usage: node drive.mjs auth|device <url> <username> [--deny] [--user-code CODE] [--verbose]\n');
    process.exit(2);
  }
  const b = new Browser({ verbose: values.verbose });
  try {
    const out = mode === 'auth'
      ? await b.authorize(url, username, { deny: values.deny })
      : await b.device(url, username, { deny: values.deny, userCode: values['user-code'] });
    delete out.body;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } catch (e) {
    process.stderr.write(`drive: ${e.message}\n`);
    process.exit(1);
  }
}
