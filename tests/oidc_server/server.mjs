// A standard OpenID Connect provider for the tests: panva/oidc-provider (OpenID Certified)
// with its development sign-in pages, one confidential client, and accounts whose id is
// whatever login the test types. Listens on a free loopback port and prints it.
//
//   node server.mjs <client_id> <client_secret> <redirect_uri>

import http from "node:http";

import Provider from "oidc-provider";

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ["sub"], email: ["email", "email_verified"] },
    cookies: { keys: ["test-only-cookie-key"] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.com`, email_verified: true };
        },
      };
    },
  });
  server.on("request", provider.callback());
  process.stdout.write(`listening ${port}\n`);
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));
