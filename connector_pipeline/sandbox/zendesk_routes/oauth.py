"""OAuth: authorization-code grant (with PKCE) and refresh tokens, as Zendesk offers them."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_routes.common import read_body
from connector_pipeline.sandbox.zendesk_service import OAuthGrant, ZendeskSandbox


def router(sandbox: ZendeskSandbox) -> APIRouter:
    router = APIRouter()
    config = sandbox.config

    def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    @router.get(settings.ZENDESK_OAUTH_AUTHORIZE_PATH, response_model=None)
    def authorize(request: Request) -> Response:
        """Approves at once, as the sandbox admin, and redirects back with the code."""
        params = request.query_params
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in config.oauth_clients:
            return oauth_error("invalid_client", "Unknown client_id")
        if params.get("response_type") != "code" or not redirect_uri:
            return oauth_error("invalid_request", "response_type=code and redirect_uri required")
        method = params.get("code_challenge_method")
        if config.oauth_clients[client_id] is None and not params.get("code_challenge"):
            return oauth_error("invalid_request", "public clients must use PKCE")
        if method not in (None, "S256"):
            return oauth_error("invalid_request", "code_challenge_method must be S256")
        code = secrets.token_urlsafe(24)
        sandbox.codes[code] = OAuthGrant(
            client_id,
            params.get("scope", settings.ZENDESK_OAUTH_DEFAULT_SCOPE),
            time.time() + settings.ZENDESK_OAUTH_CODE_TTL_S,
            redirect_uri,
            params.get("code_challenge"),
            method,
        )
        query = {"code": code}
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    @router.post(settings.ZENDESK_OAUTH_TOKEN_PATH, response_model=None)
    async def token(request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await read_body(request)
        else:
            body = dict(await request.form())
        client_id = str(body.get("client_id", ""))
        if client_id not in config.oauth_clients:
            return oauth_error("invalid_client", "Unknown client_id", 401)
        expected_secret = config.oauth_clients[client_id]
        if expected_secret is not None and body.get("client_secret") != expected_secret:
            return oauth_error("invalid_client", "Client authentication failed", 401)
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            grant = sandbox.codes.pop(str(body.get("code", "")), None)
            if grant is None or grant.expires < time.time() or grant.client_id != client_id:
                return oauth_error("invalid_grant", "The authorization code is invalid or expired")
            if body.get("redirect_uri") != grant.redirect_uri:
                return oauth_error("invalid_grant", "redirect_uri does not match")
            if grant.code_challenge is not None:
                verifier = str(body.get("code_verifier", ""))
                digest = hashlib.sha256(verifier.encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                if not secrets.compare_digest(challenge, grant.code_challenge):
                    return oauth_error("invalid_grant", "code_verifier does not match")
            scope = grant.scope
        elif grant_type == "refresh_token":
            old = sandbox.refresh_tokens.pop(str(body.get("refresh_token", "")), None)
            if old is None or old.expires < time.time() or old.client_id != client_id:
                return oauth_error("invalid_grant", "The refresh token is invalid or expired")
            scope = old.scope
        else:
            return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r}")
        access_ttl = float(body.get("expires_in") or config.oauth_access_ttl_s)
        refresh_ttl = float(body.get("refresh_token_expires_in") or config.oauth_refresh_ttl_s)
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        now = time.time()
        sandbox.access_tokens[access] = OAuthGrant(client_id, scope, now + access_ttl)
        sandbox.refresh_tokens[refresh] = OAuthGrant(client_id, scope, now + refresh_ttl)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "bearer",
                "scope": scope,
                "expires_in": int(access_ttl),
                "refresh_token": refresh,
                "refresh_token_expires_in": int(refresh_ttl),
            }
        )

    return router
