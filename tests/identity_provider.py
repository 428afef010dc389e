"""A genuine OAuth 2.0 / OpenID Connect provider for the tests, served over HTTP on loopback.

It speaks every protocol the app talks to, each under its own path: OpenID Connect with
discovery and a JWKS (`/oidc`, `/google`, `/apple` and Microsoft's per-tenant `/ms/{tenant}/v2.0`),
GitHub's OAuth app API (`/github`, `/github-api`) and Facebook's (`/facebook`, `/graph`).
It checks what a provider checks: the client's credentials (Apple's ES256 client secret
included), the exact redirect URI, PKCE S256 and single-use codes. On a test's request it
misbehaves the ways real providers and attackers do: other claims, a key it never published,
error answers, or no answer at all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

OIDC_REALMS = ("oidc", "google", "apple")
APPLE_TEAM_ID = "TEAM000001"
APPLE_KEY_ID = "KEY0000001"


@dataclass
class Account:
    """The person signed in at the provider."""

    subject: str = "user-1"
    email: str | None = "ann@example.com"
    email_verified: Any = True
    # More ID token claims (Microsoft's `tid`, `xms_edov`).
    claims: dict[str, Any] = field(default_factory=dict)
    # GitHub's `/user/emails`; by default the account's address, primary and verified.
    github_emails: list[dict[str, Any]] | None = None


@dataclass
class Client:
    secret: str
    redirect_uris: set[str]


@dataclass
class _Grant:
    realm: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    tenant: str
    account: Account


@dataclass
class Misbehaviour:
    """What the provider does wrong, as a test asks. Reset before every test."""

    # `error=` in the redirect back, instead of a code.
    authorize_error: str | None = None
    # For these endpoints ("discovery", "jwks", "token", "profile"): an HTTP status to answer
    # with, "hang" to never answer, or "drip" to answer a byte at a time, forever.
    endpoints: dict[str, int | str] = field(default_factory=dict)
    # For these endpoints: a JSON body to answer 200 with instead of the real one (the token
    # and profile endpoints check the request first).
    answers: dict[str, Any] = field(default_factory=dict)
    # Claims put in (or, as None, taken out of) the ID token.
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    # Sign ID tokens with this key instead of the published one.
    signing_key: RSAKey | None = None
    # Issue unsigned ID tokens (`"alg": "none"`).
    unsigned: bool = False
    # Entries put in (or, as None, taken out of) the discovery document.
    discovery: dict[str, Any] = field(default_factory=dict)


class IdentityProvider:
    """The provider's state and its Starlette application."""

    def __init__(self) -> None:
        self.base_url = ""
        self.keys = [rsa_key()]
        self.clients: dict[str, Client] = {}
        self.account = Account()
        self.misbehaviour = Misbehaviour()
        self.apple_key = ec.generate_private_key(ec.SECP256R1())
        self.codes: dict[str, _Grant] = {}
        self.access_tokens: dict[str, _Grant] = {}
        self.jwks_requests = 0
        # How each token request authenticated the client: "basic" or "post".
        self.client_auth: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/{realm}/.well-known/openid-configuration", self.discovery),
                Route("/ms/{tenant}/v2.0/.well-known/openid-configuration", self.ms_discovery),
                Route("/{realm}/authorize", self.authorize),
                Route("/ms/{tenant}/v2.0/authorize", self.authorize),
                Route("/{realm}/token", self.token, methods=["POST"]),
                Route("/ms/{tenant}/v2.0/token", self.token, methods=["POST"]),
                Route("/{realm}/jwks", self.jwks),
                Route("/{realm}/userinfo", self.userinfo),
                Route("/ms/{tenant}/v2.0/jwks", self.jwks),
                Route("/github/login/oauth/authorize", self.authorize),
                Route("/github/login/oauth/access_token", self.token, methods=["POST"]),
                Route("/github-api/user", self.github_user),
                Route("/github-api/user/emails", self.github_emails),
                Route("/facebook/dialog/oauth", self.authorize),
                Route("/graph/oauth/access_token", self.token, methods=["POST"]),
                Route("/graph/me", self.facebook_me),
            ]
        )

    # The test's controls.

    def reset(self) -> None:
        self.keys = self.keys[-1:]
        self.account = Account()
        self.misbehaviour = Misbehaviour()
        self.codes.clear()
        self.access_tokens.clear()
        self.clients.clear()
        self.jwks_requests = 0
        self.client_auth.clear()

    def register(self, client_id: str, secret: str, *redirect_uris: str) -> None:
        self.clients[client_id] = Client(secret, set(redirect_uris))

    def rotate_keys(self) -> RSAKey:
        """Publish a new key and sign with it from now on (the old one stays published)."""
        key = rsa_key()
        self.keys.append(key)
        return key

    def apple_private_key_pem(self) -> str:
        return self.apple_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def issuer(self, realm: str, tenant: str = "") -> str:
        if realm == "ms":
            return f"{self.base_url}/ms/{tenant}/v2.0"
        return f"{self.base_url}/{realm}"

    # OpenID Connect.

    async def discovery(self, request: Request) -> Response:
        realm = request.path_params["realm"]
        if realm not in OIDC_REALMS:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return await self._discovery(self.issuer(realm), self.issuer(realm))

    async def ms_discovery(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        multi_tenant = tenant in ("common", "organizations", "consumers")
        issuer = self.issuer("ms", "{tenantid}" if multi_tenant else tenant)
        return await self._discovery(self.issuer("ms", tenant), issuer)

    async def _discovery(self, base: str, issuer: str) -> Response:
        if failure := await self._failure("discovery"):
            return failure
        # RFC 9207: the OIDC realms name themselves in authorization responses (Microsoft's
        # per-tenant one does not, as Entra ID does not).
        names_itself = "{tenantid}" not in issuer and "/ms/" not in issuer
        document: Any = {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "userinfo_endpoint": f"{base}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": names_itself or None,
        } | self.misbehaviour.discovery
        document = {k: v for k, v in document.items() if v is not None}
        return JSONResponse(self.misbehaviour.answers.get("discovery", document))

    async def jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        if failure := await self._failure("jwks"):
            return failure
        keys = KeySet(list(self.keys)).as_dict(private=False)
        return JSONResponse(self.misbehaviour.answers.get("jwks", keys))

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        realm, tenant = _realm(request)
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI (RFC 6749 4.1.2.1).
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        answer = {"state": params.get("state", "")}
        if realm in OIDC_REALMS:
            answer["iss"] = self.issuer(realm)
        if self.misbehaviour.authorize_error:
            answer["error"] = self.misbehaviour.authorize_error
        elif (
            params.get("response_type") != "code"
            or params.get("code_challenge_method") != "S256"
            or not params.get("code_challenge")
        ):
            answer["error"] = "invalid_request"  # this provider demands PKCE
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = _Grant(
                realm=realm,
                client_id=params["client_id"],
                redirect_uri=redirect_uri,
                code_challenge=params["code_challenge"],
                nonce=params.get("nonce"),
                tenant=tenant,
                account=self.account,
            )
            answer["code"] = code
        if params.get("response_mode") == "form_post":
            return HTMLResponse(_auto_post_form(redirect_uri, answer))
        return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", status_code=302)

    async def token(self, request: Request) -> Response:
        if failure := await self._failure("token"):
            return failure
        form = dict(await request.form())
        realm, _ = _realm(request)
        client_id = self._authenticated_client(request, form, realm)
        grant = self.codes.pop(str(form.get("code", "")), None)
        if client_id is None:
            return self._token_error(realm, "invalid_client", status=401)
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or _s256(str(form.get("code_verifier", ""))) != grant.code_challenge
        ):
            return self._token_error(realm, "invalid_grant")
        if "token" in self.misbehaviour.answers:
            return JSONResponse(self.misbehaviour.answers["token"])
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = grant
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600}
        if realm in (*OIDC_REALMS, "ms"):
            body["id_token"] = self._id_token(grant)
        return JSONResponse(body)

    def _authenticated_client(
        self, request: Request, form: dict[str, Any], realm: str
    ) -> str | None:
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, secret = decoded.partition(":")
        self.client_auth.append("basic" if authorization.startswith("Basic ") else "post")
        client = self.clients.get(client_id)
        if client is None:
            return None
        if realm == "apple":
            return client_id if self._valid_apple_secret(client_id, secret) else None
        return client_id if hmac.compare_digest(client.secret, secret) else None

    def _valid_apple_secret(self, client_id: str, secret: str) -> bool:
        """Apple's check: an ES256 JWT from the team's key, for this client, short-lived."""
        key = ECKey.import_key(self.apple_key.public_key())
        try:
            token = jwt.decode(secret, key, algorithms=["ES256"])
        except (JoseError, ValueError):
            return False
        claims, now = token.claims, time.time()
        return (
            token.header.get("kid") == APPLE_KEY_ID
            and claims.get("iss") == APPLE_TEAM_ID
            and claims.get("sub") == client_id
            and claims.get("aud") == self.issuer("apple")
            and claims.get("iat", now + 1) <= now
            and now < claims.get("exp", 0) <= now + 15_777_000  # six months at most
        )

    def _token_error(self, realm: str, error: str, status: int = 400) -> Response:
        if realm == "github":  # GitHub answers errors with 200, in words of its own
            return JSONResponse(
                {"error": {"invalid_grant": "bad_verification_code"}.get(error, error)}
            )
        return JSONResponse({"error": error}, status_code=status)

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        account = grant.account
        tenant = str(account.claims.get("tid", grant.tenant))
        claims: dict[str, Any] = {
            "iss": self.issuer(grant.realm, tenant),
            "sub": account.subject,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "email": account.email,
            "email_verified": account.email_verified,
            **account.claims,
        }
        for name, value in self.misbehaviour.id_token_claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        claims = {name: value for name, value in claims.items() if value is not None}
        if self.misbehaviour.unsigned:
            header = _base64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{_base64url(json.dumps(claims).encode())}."
        key = self.misbehaviour.signing_key or self.keys[-1]
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    # Profiles: OpenID Connect's UserInfo, GitHub's and Facebook's APIs.

    async def userinfo(self, request: Request) -> Response:
        grant, failure = await self._profile_grant(request)
        if grant is None:
            return failure
        account = grant.account
        claims = {"sub": account.subject, "email": account.email}
        claims["email_verified"] = account.email_verified
        return JSONResponse({k: v for k, v in claims.items() if v is not None})

    async def github_user(self, request: Request) -> Response:
        grant, failure = await self._profile_grant(request)
        if grant is None:
            return failure
        return JSONResponse({"id": int(grant.account.subject.rsplit("-", 1)[-1]), "login": "ann"})

    async def github_emails(self, request: Request) -> Response:
        grant, failure = await self._profile_grant(request)
        if grant is None:
            return failure
        account = grant.account
        emails = account.github_emails
        if emails is None:
            emails = [{"email": account.email, "primary": True, "verified": True}]
        return JSONResponse(emails)

    async def facebook_me(self, request: Request) -> Response:
        grant, failure = await self._profile_grant(request)
        if grant is None:
            return failure
        token = request.headers["authorization"].removeprefix("Bearer ")
        secret = self.clients[grant.client_id].secret.encode()
        proof = hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()
        if request.query_params.get("appsecret_proof") != proof:
            return JSONResponse({"error": {"message": "Invalid appsecret_proof"}}, status_code=400)
        fields = request.query_params.get("fields", "id").split(",")
        profile = {"id": grant.account.subject, "email": grant.account.email, "name": "Ann"}
        return JSONResponse({name: profile[name] for name in fields if profile.get(name)})

    async def _profile_grant(self, request: Request) -> tuple[_Grant | None, Response]:
        if failure := await self._failure("profile"):
            return None, failure
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        grant = self.access_tokens.get(token)
        if grant is None:
            return None, JSONResponse({"message": "Bad credentials"}, status_code=401)
        if "profile" in self.misbehaviour.answers:
            return None, JSONResponse(self.misbehaviour.answers["profile"])
        return grant, Response()

    async def _failure(self, endpoint: str) -> Response | None:
        behaviour = self.misbehaviour.endpoints.get(endpoint)
        if behaviour == "hang":
            await asyncio.Event().wait()  # until the server shuts down
        if behaviour == "drip":
            return StreamingResponse(_drip(), media_type="application/json")
        if isinstance(behaviour, int):
            return HTMLResponse("<h1>Something went wrong</h1>", status_code=behaviour)
        return None


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig"})


def _realm(request: Request) -> tuple[str, str]:
    """The protocol family a path belongs to, and Microsoft's tenant segment."""
    first = request.url.path.split("/")[1]
    realm = {"graph": "facebook"}.get(first, first)
    return realm, request.path_params.get("tenant", "")


async def _drip() -> AsyncIterator[bytes]:
    """A body that never ends, a byte every half second: each read is quick, the whole never."""
    while True:
        yield b" "
        await asyncio.sleep(0.5)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return _base64url(hashlib.sha256(verifier.encode()).digest())


def _auto_post_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<form method="post" action="{html.escape(action)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


@contextmanager
def serving(provider: IdentityProvider) -> Iterator[IdentityProvider]:
    """Serve `provider` on a loopback port in a thread of its own."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from here on, before the server loop runs
    provider.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        provider.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
