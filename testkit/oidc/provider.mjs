// A real OpenID provider for dockward's sign-in tests (npm's certified
// oidc-provider): `node provider.mjs`, with PORT, HOST, ISSUER and
// REDIRECT_URI in the environment. Its development login form takes any
// password; the login is the subject. Prints "ready" once it listens.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const users = {
  alice: { preferred_username: 'alice', email: 'alice@example.test', groups: ['dockward-admins'] },
  bob: { preferred_username: 'bob', email: 'bob@example.test', groups: ['dockward-viewers'] },
  carol: { preferred_username: 'carol', email: 'carol@example.test', groups: ['shop-team', 'staff'] },
  // No user name at all: a sign-in must be refused for the missing claim.
  nameless: { email: 'nameless@example.test', groups: ['dockward-admins'] },
};
const provider = new Provider(process.env.ISSUER, {
  clients: [{
    client_id: 'dockward',
    client_secret: 'a-test-client-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email'], profile: ['preferred_username'], groups: ['groups'] },
  // The scopes' claims in the ID token too (by default only at userinfo).
  conformIdTokenClaims: false,
  findAccount: (ctx, sub) => users[sub] && { accountId: sub, claims: () => ({ sub, ...users[sub] }) },
  features: { devInteractions: { enabled: true } },
});
provider.listen(port, process.env.HOST || '127.0.0.1', () => console.log('ready'));
