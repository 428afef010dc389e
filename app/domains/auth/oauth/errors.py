"""Problems a sign-in with an external provider reports. Nothing a provider does, answers or
fails to answer becomes a 500: it is a 4xx when the browser brought something wrong, 502 when
the provider answered wrongly, 504 when it did not answer in time."""

from __future__ import annotations

from app.errors import ProblemError


class UnknownProvider(ProblemError):
    status = 404
    code = "oauth_provider_not_found"
    title = "Not Found"
    detail = "No sign-in provider of this name is configured here."


class RedirectNotAllowed(ProblemError):
    status = 400
    code = "oauth_redirect_not_allowed"
    title = "Bad Request"
    detail = "redirect_to must be an absolute http(s) URL on an allowed origin."


class InvalidState(ProblemError):
    status = 400
    code = "oauth_invalid_state"
    title = "Bad Request"
    detail = (
        "This sign-in is unknown, expired, already finished, or was started in another "
        "browser or for another provider. Start again."
    )


class IssuerMismatch(ProblemError):
    status = 400
    code = "oauth_issuer_mismatch"
    title = "Bad Request"
    detail = (
        "The authorization response names another issuer than the provider it was sent to "
        "(RFC 9207), or none where the provider always names itself."
    )


class AuthorizationFailed(ProblemError):
    status = 400
    code = "oauth_authorization_failed"
    title = "Bad Request"
    detail = "The provider did not authorize the sign-in."


class CodeRejected(ProblemError):
    status = 400
    code = "oauth_code_rejected"
    title = "Bad Request"
    detail = "The provider refused the authorization code: it is invalid, used or expired."


class ProviderFailed(ProblemError):
    status = 502
    code = "oauth_provider_failed"
    title = "Bad Gateway"
    detail = "The provider failed or gave an answer that could not be used."


class InvalidIdToken(ProblemError):
    status = 502
    code = "oauth_invalid_id_token"
    title = "Bad Gateway"
    detail = "The provider's ID token failed validation."


class ProviderTimeout(ProblemError):
    status = 504
    code = "oauth_provider_timeout"
    title = "Gateway Timeout"
    detail = "The provider did not answer in time."


class TenantNotAllowed(ProblemError):
    status = 403
    code = "oauth_tenant_not_allowed"
    title = "Forbidden"
    detail = "Accounts of this Microsoft organisation may not sign in here."


class AccountConflict(ProblemError):
    status = 409
    code = "oauth_account_conflict"
    title = "Conflict"
    detail = (
        "An account with this email address already exists. Sign in to it, then link this "
        "provider from the account settings."
    )


class EmailRequired(ProblemError):
    status = 403
    code = "oauth_email_required"
    title = "Forbidden"
    detail = (
        "The provider shared no email address, which a new account needs. Allow access to "
        "it, or sign in another way and link this provider."
    )


class AccountDisabled(ProblemError):
    status = 403
    code = "oauth_account_disabled"
    title = "Forbidden"
    detail = "The account this identity belongs to is disabled."


class IdentityTaken(ProblemError):
    status = 409
    code = "oauth_identity_taken"
    title = "Conflict"
    detail = "This provider identity is already linked to another account."


class ProviderAlreadyLinked(ProblemError):
    status = 409
    code = "oauth_provider_already_linked"
    title = "Conflict"
    detail = "Another identity of this provider is already linked; unlink it first."


class OAuthAccountNotFound(ProblemError):
    status = 404
    code = "oauth_account_not_found"
    title = "Not Found"
    detail = "No identity of this provider is linked to your account."


class LastSignInMethod(ProblemError):
    status = 409
    code = "oauth_last_sign_in_method"
    title = "Conflict"
    detail = "This is your only way to sign in. Link another provider first."


class InvalidExchangeCode(ProblemError):
    status = 400
    code = "oauth_invalid_code"
    title = "Bad Request"
    detail = "The sign-in code is unknown, expired or already used."
