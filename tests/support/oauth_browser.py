"""A scripted browser that signs a user in through Coves and the reference PDS.

It does what a person's browser does, with the requests the PDS's own
sign-in page makes (``@atproto/oauth-provider``'s authorization UI):

1. open Coves' ``/oauth/login`` (or ``/oauth/mobile/login``) and follow the
   redirect to the PDS's authorization endpoint;
2. load the authorization page (device and CSRF cookies are set);
3. ``POST /@atproto/oauth-provider/~api/sign-in`` with the password, from
   that page (same-origin fetch metadata, referrer, CSRF header);
4. ``POST .../~api/consent`` for the account, which answers the URL of the
   redirect back to the client;
5. open that URL, which redirects (303) to Coves' ``/oauth/callback``, and
   hand that to Coves.

Coves is reached through the Quart test client; the PDS over real HTTP.
Cookies are kept per site by hand because the PDS marks its CSRF cookie
``Secure`` on plain-http localhost (browsers treat localhost as secure;
Python's cookie jar does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

API = "/@atproto/oauth-provider/~api"


class SignInError(AssertionError):
    pass


@dataclass
class Jar:
    cookies: dict[str, str] = field(default_factory=dict)

    def take(self, set_cookie_headers: list[str]) -> None:
        for header in set_cookie_headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value == "" or morsel.get("max-age") == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


@dataclass
class Landing:
    """Where Coves sent the browser at the end, and the cookies it holds for Coves."""

    status: int
    location: str
    coves_cookies: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}


@dataclass
class Browser:
    coves: Any  # the Quart test client
    coves_jar: Jar = field(default_factory=Jar)
    pds_jar: Jar = field(default_factory=Jar)
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) CovesTest/1.0"

    async def coves_get(self, url: str) -> Any:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": self.user_agent}
        if self.coves_jar.cookies:
            headers["Cookie"] = self.coves_jar.header()
        response = await self.coves.get(path, headers=headers)
        self.coves_jar.take(response.headers.getlist("Set-Cookie"))
        return response

    async def start(self, login_path: str) -> str:
        """Open a Coves sign-in URL; return where it sends the browser."""
        response = await self.coves_get(login_path)
        if response.status_code != 302:
            raise SignInError(f"{login_path}: {response.status_code} {await response.get_data()}")
        return str(response.headers["Location"])

    async def authorize(self, authorize_url: str, username: str, password: str) -> str:
        """Sign in and consent on the PDS's page; return the redirect back to the client."""
        parts = urlsplit(authorize_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        async with httpx.AsyncClient(timeout=20.0, follow_redirects=False) as http:
            page = await http.get(authorize_url, headers=self._navigate("cross-site"))
            if page.status_code != 200:
                raise SignInError(f"authorization page: {page.status_code} {page.text[:500]}")
            self.pds_jar.take(page.headers.get_list("set-cookie"))
            csrf = self.pds_jar.cookies.get("csrf-token")
            if not csrf:
                raise SignInError(f"no CSRF cookie from the authorization page: {self.pds_jar}")

            async def api(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
                response = await http.post(
                    f"{origin}{API}{endpoint}",
                    json=body,
                    headers=self._api_headers(origin, authorize_url),
                )
                self.pds_jar.take(response.headers.get_list("set-cookie"))
                if response.status_code != 200:
                    raise SignInError(f"{endpoint}: {response.status_code} {response.text[:500]}")
                result: dict[str, Any] = response.json()
                return result

            signed = await api(
                "/sign-in",
                {"locale": "en", "username": username, "password": password, "remember": True},
            )
            did = signed["account"]["did"]
            consent = await api("/consent", {"did": did})
            redirect = await http.get(
                consent["url"],
                headers={**self._navigate("same-origin"), "Referer": authorize_url},
            )
            if redirect.status_code not in (302, 303):
                raise SignInError(f"redirect page: {redirect.status_code} {redirect.text[:500]}")
            return str(redirect.headers["location"])

    async def reject(self, authorize_url: str) -> str:
        """Load the authorization page and press "deny"; return the redirect to the client."""
        parts = urlsplit(authorize_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        async with httpx.AsyncClient(timeout=20.0, follow_redirects=False) as http:
            page = await http.get(authorize_url, headers=self._navigate("cross-site"))
            self.pds_jar.take(page.headers.get_list("set-cookie"))
            response = await http.post(
                f"{origin}{API}/reject",
                json={},
                headers=self._api_headers(origin, authorize_url),
            )
            if response.status_code != 200:
                raise SignInError(f"/reject: {response.status_code} {response.text[:500]}")
            redirect = await http.get(
                response.json()["url"],
                headers={**self._navigate("same-origin"), "Referer": authorize_url},
            )
            return str(redirect.headers["location"])

    def _navigate(self, site: str) -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "text/html",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Site": site,
        }
        if self.pds_jar.cookies:
            headers["Cookie"] = self.pds_jar.header()
        return headers

    def _api_headers(self, origin: str, referer: str) -> dict[str, str]:
        return {
            "User-Agent": self.user_agent,
            "Origin": origin,
            "Referer": referer,
            "Sec-Fetch-Mode": "same-origin",
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Dest": "empty",
            "x-csrf-token": self.pds_jar.cookies.get("csrf-token", ""),
            "Cookie": self.pds_jar.header(),
        }

    async def finish(self, callback_url: str) -> Landing:
        response = await self.coves_get(callback_url)
        return Landing(
            response.status_code,
            str(response.headers.get("Location", "")),
            dict(self.coves_jar.cookies),
        )

    async def sign_in(self, login_path: str, username: str, password: str) -> Landing:
        authorize_url = await self.start(login_path)
        callback = await self.authorize(authorize_url, username, password)
        return await self.finish(callback)
