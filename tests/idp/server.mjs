#!/usr/bin/env node
// Local OpenID provider for Portcullis integration tests.
//
// Wraps the npm package `oidc-provider` (pinned in package.json) and adds a
// tiny, stable, headless-drivable login + consent interaction. Everything is
// in memory; keys are generated at start-up. See README.md for the flags and
// the exact HTTP steps a test performs to play the user.
//
// Prints exactly one line `READY <issuer>` on stdout once it is listening.
// All diagnostics go to stderr.

import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const USAGE = `usage: node server.mjs [--port N] [--client-id ID] [--users FILE]
                      [--id-token-ttl SECONDS] [--device-interval SECONDS]
                      [--alg RS256|EdDSA] [--quiet]
                      [--opaque-sub] [--no-device-discovery] [--strict-offline-access]
                      [--omit-id-token device|all]`;

function fail(msg) {
  process.stderr.write(`idp: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'client-id': { type: 'string', default: 'portcullis-cli' },
      users: { type: 'string' },
      'id-token-ttl': { type: 'string', default: '600' },
      'device-interval': { type: 'string', default: '1' },
      alg: { type: 'string', default: 'RS256' },
      quiet: { type: 'boolean', default: false },
      // "The hard way", as common IdPs behave:
      // opaque subjects (the login name only in preferred_username),
      'opaque-sub': { type: 'boolean', default: false },
      // a device endpoint that is served but left out of discovery,
      'no-device-discovery': { type: 'boolean', default: false },
      // refresh tokens only when offline_access was asked for (and granted),
      'strict-offline-access': { type: 'boolean', default: false },
      // token responses without an id_token (for the device grant, or every grant).
      'omit-id-token': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (e) {
  fail(e.message);
}

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`);
const idTokenTtl = Number(args['id-token-ttl']);
if (!Number.isInteger(idTokenTtl) || idTokenTtl <= 0) fail(`bad --id-token-ttl ${args['id-token-ttl']}`);
const deviceInterval = Number(args['device-interval']);
if (!Number.isInteger(deviceInterval) || deviceInterval < 0) fail(`bad --device-interval ${args['device-interval']}`);
const clientId = args['client-id'];
const alg = args.alg;
if (!['RS256', 'EdDSA'].includes(alg)) fail(`bad --alg ${alg} (RS256 or EdDSA)`);
const omitIdToken = args['omit-id-token'];
if (omitIdToken !== undefined && !['device', 'all'].includes(omitIdToken)) fail(`bad --omit-id-token ${omitIdToken}`);

// ---------------------------------------------------------------- users ----
// { "<login>": { "team": "<string>", "groups": ["<string>", ...] }, ... }
const DEFAULT_USERS = {
  alice: { team: 'payments', groups: ['engineers'] },
  admin: { team: 'security', groups: ['portcullis-admins'] },
};

function loadUsers(path) {
  if (!path) return DEFAULT_USERS;
  let raw;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(`cannot read users file ${path}: ${e.message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('users file must be a JSON object');
  for (const [login, u] of Object.entries(raw)) {
    if (!u || typeof u !== 'object') fail(`user ${login}: must be an object`);
    if (u.team !== undefined && typeof u.team !== 'string') fail(`user ${login}: team must be a string`);
    if (u.groups !== undefined && !(Array.isArray(u.groups) && u.groups.every((g) => typeof g === 'string'))) {
      fail(`user ${login}: groups must be an array of strings`);
    }
  }
  return raw;
}
const users = loadUsers(args.users);

// The subject of a login: the login itself, or (--opaque-sub) an opaque id derived from it, as
// Okta, Entra ID and Auth0 give (`00u...`, GUIDs, `auth0|...`).
const subOf = (login) => (args['opaque-sub']
  ? `u${createHash('sha256').update(`portcullis-test-idp:${login}`).digest('hex').slice(0, 20)}`
  : login);
const loginOf = new Map(Object.keys(users).map((login) => [subOf(login), login]));

function log(msg) {
  if (!args.quiet) process.stderr.write(`idp: ${msg}\n`);
}

// ----------------------------------------------------------------- keys ----
function signingKey() {
  const kid = randomUUID();
  if (alg === 'EdDSA') {
    const { privateKey } = generateKeyPairSync('ed25519');
    return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' };
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

// ------------------------------------------------------------ listening ----
// Listen first so that --port 0 gives us the real port before the issuer is
// fixed; requests arriving before the provider exists get a 503.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 1000;

await new Promise((resolve) => {
  server.once('error', (e) => fail(`cannot listen on 127.0.0.1:${port}: ${e.message}`));
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

// ------------------------------------------------------------- provider ----
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    application_type: 'native', // RFC 8252: any port accepted on loopback redirect URIs
    token_endpoint_auth_method: 'none', // public client, no secret
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback', 'http://localhost/callback'],
    id_token_signed_response_alg: alg,
  }],
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Custom claims, released under the custom scope `portcullis`.
  claims: {
    openid: ['sub'],
    portcullis: ['team', 'groups', 'preferred_username'],
  },
  scopes: ['openid', 'offline_access', 'portcullis'],
  responseTypes: ['code'],
  // Put the claims of granted scopes into the ID token itself (not only userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // oidc-provider 9 only supports S256
  features: {
    devInteractions: { enabled: false }, // replaced by the minimal interaction below
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      async userCodeInputSource(ctx, form, _out, err) {
        ctx.type = 'html';
        ctx.set('x-idp-page', err ? 'device-input-error' : 'device-input');
        ctx.body = `<!DOCTYPE html><html><body><h1>Enter the code shown on your device</h1>${err ? `<p id="error">${esc(err.message)}</p>` : ''}${form}<button type="submit" form="op.deviceInputForm">Continue</button></body></html>`;
      },
      async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
        ctx.type = 'html';
        ctx.set('x-idp-page', 'device-confirm');
        ctx.body = `<!DOCTYPE html><html><body><h1>Sign in ${esc(client.clientId)}?</h1><p>Code <code id="user_code">${esc(userCode)}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button></body></html>`;
      },
      async successSource(ctx) {
        ctx.type = 'html';
        ctx.set('x-idp-page', 'device-success');
        ctx.body = '<!DOCTYPE html><html><body><h1 id="device-success">Sign-in complete</h1><p>You can return to your device.</p></body></html>';
      },
    },
    revocation: { enabled: true },
    introspection: { enabled: false },
  },
  // Issue a refresh token whenever the client may use the refresh_token grant
  // (no need to request offline_access; requesting it is also fine), or, with
  // --strict-offline-access, only when offline_access was granted (Okta, Auth0, Entra ID).
  async issueRefreshToken(_ctx, client, source) {
    if (args['strict-offline-access']) {
      return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
    }
    return client.grantTypeAllowed('refresh_token');
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    DeviceCode: 600,
    IdToken: idTokenTtl,
    RefreshToken: 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
    Grant: 24 * 3600,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(_ctx, sub) {
    const login = loginOf.get(sub);
    if (login === undefined) return undefined;
    const user = users[login];
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: login,
          ...(user.team !== undefined ? { team: user.team } : {}),
          groups: user.groups ?? [],
        };
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.set('x-idp-page', 'error');
    ctx.body = `<!DOCTYPE html><html><body><h1>error</h1>${Object.entries(out)
      .map(([k, v]) => `<pre id="${esc(k)}">${esc(k)}: ${esc(v)}</pre>`).join('')}</body></html>`;
  },
});

// oidc-provider omits `interval` from the device authorization response (so
// RFC 8628 clients default to 5 s between polls) and never answers slow_down.
// Advertise a short interval so tests poll quickly; 0 = leave it out.
if (deviceInterval > 0) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body.interval = deviceInterval;
    }
  });
}

// --no-device-discovery: the device endpoint is served but not advertised.
if (args['no-device-discovery']) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      delete ctx.body.device_authorization_endpoint;
    }
  });
}

// --omit-id-token: token responses without an id_token.
if (omitIdToken) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && (omitIdToken === 'all' || ctx.oidc.params?.grant_type === 'urn:ietf:params:oauth:grant-type:device_code')) {
      delete ctx.body.id_token;
    }
  });
}

// oidc-provider emits these for every failed request; surface them on stderr.
for (const ev of ['server_error', 'authorization.error', 'grant.error', 'device_authorization.error',
  'code_verification.error', 'device_resume.error', 'end_session.error', 'jwks.error']) {
  provider.on(ev, (_ctx, err) => log(`${ev}: ${err.name} ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`));
}

// ---------------------------------------------------------- interaction ----
// GET  /interaction/:uid           -> login or consent page (x-idp-prompt header)
// POST /interaction/:uid/login     form: login=<username>
// POST /interaction/:uid/confirm   (no fields)
// POST /interaction/:uid/abort     (no fields) -> access_denied to the client
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(res, status, prompt, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-idp-prompt', prompt);
  res.end(`<!DOCTYPE html><html><head><title>${esc(prompt)}</title></head><body>${body}</body></html>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(res, uid, status = 200, message = '') {
  page(res, status, 'login', `<h1>Sign in</h1>${message ? `<p id="error">${esc(message)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="login" autofocus><button type="submit">Sign in</button></form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw Object.assign(new Error('interaction mismatch'), { status: 400 });
  const { prompt, params, session } = details;

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') return loginPage(res, uid);
    const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
    return page(res, 200, 'consent', `<h1>Authorize ${esc(params.client_id)}</h1>
<p>Signed in as <b id="account">${esc(session?.accountId ?? '')}</b>; scopes: <span id="scopes">${esc(scopes.join(' '))}</span></p>
<form id="confirm" method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit">Allow</button></form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>`);
  }

  if (req.method !== 'POST') throw Object.assign(new Error('method not allowed'), { status: 405 });

  if (action === 'login') {
    if (prompt.name !== 'login') throw Object.assign(new Error('not a login prompt'), { status: 400 });
    const form = await readForm(req);
    const login = (form.get('login') ?? '').trim();
    if (!Object.hasOwn(users, login)) {
      log(`login rejected for unknown user ${JSON.stringify(login)}`);
      return loginPage(res, uid, 401, 'unknown user');
    }
    log(`login ${login} (client ${params.client_id})`);
    return provider.interactionFinished(req, res, { login: { accountId: subOf(login) } }, { mergeWithLastSubmission: false });
  }

  if (action === 'confirm') {
    if (prompt.name !== 'consent') throw Object.assign(new Error('not a consent prompt'), { status: 400 });
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  throw Object.assign(new Error('not found'), { status: 404 });
}

const providerCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?\/?$/;

handler = async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  const m = INTERACTION.exec(path);
  if (!m) return providerCallback(req, res);
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (err) {
    const status = err.status ?? err.statusCode ?? 500;
    log(`interaction ${req.method} ${path}: ${status} ${err.message}`);
    if (!res.headersSent) {
      page(res, status, 'error', `<h1>error</h1><pre id="error">${esc(err.message)}</pre>`);
    } else {
      res.end();
    }
  }
};

// ---------------------------------------------------------------- ready ----
process.stdout.write(`READY ${issuer}\n`);
log(`issuer ${issuer}, client ${clientId}, alg ${alg}, id_token ttl ${idTokenTtl}s, users ${Object.keys(users).join(',')}`
  + `${args['opaque-sub'] ? ', opaque sub' : ''}${args['no-device-discovery'] ? ', no device endpoint in discovery' : ''}`
  + `${args['strict-offline-access'] ? ', refresh tokens only with offline_access' : ''}`);

let stopping = false;
function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  log(`${sig}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
