"""Why an identity could not be resolved.

Three kinds, as the DID spec asks resolvers to distinguish: the identifier is
malformed, its method is unsupported, or resolution itself failed (not
found, unreachable, or a document that does not describe it).
"""

from __future__ import annotations


class IdentityError(Exception):
    reason = "identity_error"


class InvalidIdentifier(IdentityError):
    reason = "invalid_identifier"


class UnsupportedMethod(IdentityError):
    reason = "unsupported_method"


class ResolutionFailed(IdentityError):
    reason = "resolution_failed"


class NotFound(ResolutionFailed):
    reason = "not_found"


class BadDocument(ResolutionFailed):
    reason = "bad_document"
