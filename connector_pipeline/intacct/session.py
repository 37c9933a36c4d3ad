"""An Intacct API session and the rules for trusting a gateway endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from connector_pipeline import settings
from connector_pipeline.intacct.timefmt import UserFormatting


def check_endpoint(url: str, *, allow_custom: bool, configured: str | None = None) -> str:
    """`url` if it is an https URL on a host ending in `.intacct.com`; else ValueError.

    The SDKs skip this check for the endpoint getAPISession returns; we do not, because a
    spoofed endpoint would receive every later request with its session id. With
    `allow_custom` (the sandbox) any host is accepted for the configured endpoint, but an
    endpoint returned by getAPISession (`configured` given) must stay on the configured
    scheme, host and port.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    if allow_custom:
        if configured is not None:
            home = urlsplit(configured)
            if (parts.scheme, parts.hostname, parts.port) != (
                home.scheme,
                home.hostname,
                home.port,
            ):
                raise ValueError(
                    f"refusing Intacct session endpoint {url!r}: with "
                    f"{settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT}=1 it must be on the "
                    f"configured host {home.scheme}://{home.netloc}"
                )
        return url
    host = parts.hostname.lower()
    if parts.scheme != "https" or not host.endswith(settings.INTACCT_ENDPOINT_HOST_SUFFIX):
        raise ValueError(
            f"refusing Intacct endpoint {url!r}: it must be https on a host ending in "
            f"{settings.INTACCT_ENDPOINT_HOST_SUFFIX} (set INTACCT_ALLOW_CUSTOM_ENDPOINT=1 "
            "only for the sandbox)"
        )
    return url


@dataclass
class Session:
    session_id: str
    endpoint: str
    location_id: str = ""
    # When it was issued, by the client's clock (one injectable clock for age and expiry;
    # a wall-clock jump at worst renews early, or meets the invalid-session replay).
    issued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The gateway's projected expiry; it slides forward on every call.
    expires_at: datetime | None = None
    formatting: UserFormatting | None = None

    def observe_timeout(self, timeout: datetime | None) -> None:
        if timeout is not None:
            self.expires_at = timeout if timeout.tzinfo else timeout.replace(tzinfo=UTC)

    def usable(
        self,
        *,
        margin_s: float = settings.INTACCT_SESSION_RENEW_MARGIN_S,
        max_age_s: float = settings.INTACCT_SESSION_MAX_AGE_S,
        now: datetime | None = None,
    ) -> bool:
        """Reuse until the earlier of `expires_at - margin` and `max_age` after issue."""
        current = now or datetime.now(UTC)
        if (current - self.issued_at).total_seconds() >= max_age_s:
            return False
        if self.expires_at is None:
            return True
        return (self.expires_at - current).total_seconds() > margin_s
