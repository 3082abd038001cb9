// A real OpenID Provider for the OIDC sign-in tests: node's oidc-provider (OpenID-certified), on a
// free port, with its own login and consent pages.
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {"clients": [oidc-provider client metadata...],
//               "users": {"<login>": {"password", "sub", "email", "name", "groups": [...]}}}
// The users are read again at every login and claims request, so a test can change a user's
// groups between two sign-ins. Once listening, the provider prints one JSON line:
// {"issuer": "http://127.0.0.1:<port>", "port": <port>}.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json');
  process.exit(2);
}
const readConfig = () => JSON.parse(readFileSync(configPath, 'utf8'));
const users = () => readConfig().users || {};
const userBySub = (sub) => Object.entries(users()).find(([, user]) => user.sub === sub);

const escape = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;

const readForm = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

const send = (res, status, html) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
};

const loginForm = (uid, error) => page('Test identity provider: sign in', `
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <p><label for="login">Login</label> <input id="login" name="login" autocomplete="username"></p>
  <p><label for="password">Secret</label> <input id="password" name="password" type="password"></p>
  <p><button type="submit">Continue to the application</button></p>
</form>`);

const consentForm = (uid, clientId, scopes) => page('Test identity provider: consent', `
<p>The application <strong>${escape(clientId)}</strong> asks for: ${escape(scopes.join(', '))}.</p>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button type="submit">Allow</button>
</form>`);

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    clients: readConfig().clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const found = userBySub(sub);
      if (!found) return undefined;
      const [login, user] = found;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: user.email,
            email_verified: true,
            name: user.name,
            preferred_username: user.preferred_username || login,
            groups: user.groups || [],
          };
        },
      };
    },
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/]+)(\/(login|confirm))?$/.exec(req.url.split('?')[0]);
    if (!match) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      const { uid, prompt, params } = details;
      const action = match[3];
      if (!action && req.method === 'GET') {
        if (prompt.name === 'login') {
          send(res, 200, loginForm(uid));
        } else {
          const scopes = prompt.details.missingOIDCScope || [];
          send(res, 200, consentForm(uid, params.client_id, scopes));
        }
        return;
      }
      if (action === 'login' && req.method === 'POST') {
        const form = await readForm(req);
        const user = users()[form.get('login') || ''];
        if (!user || user.password !== form.get('password')) {
          send(res, 200, loginForm(uid, 'Wrong login or secret.'));
          return;
        }
        await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, {
          mergeWithLastSubmission: false,
        });
        return;
      }
      if (action === 'confirm' && req.method === 'POST') {
        const { accountId } = details.session;
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId, clientId: params.client_id });
        const missing = prompt.details || {};
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
        if (missing.missingResourceScopes) {
          for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
            grant.addResourceScope(indicator, scopes.join(' '));
          }
        }
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, {
          mergeWithLastSubmission: true,
        });
        return;
      }
      send(res, 405, page('Not allowed', '<p>Method not allowed.</p>'));
    } catch (error) {
      send(res, 400, page('Sign-in error', `<p>${escape(error.message || error)}</p>`));
    }
  });

  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
