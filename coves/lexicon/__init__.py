"""Lexicon loading and validation: the ``social.coves.*`` wire contract in code.

Records from the network, XRPC parameters and procedure bodies are checked
against the JSON lexicons under ``lexicons/`` before anything trusts them.
"""

from coves.lexicon.errors import LexiconSchemaError, LexiconValidationError
from coves.lexicon.registry import ALIASES, LexiconRegistry

__all__ = ["ALIASES", "LexiconRegistry", "LexiconSchemaError", "LexiconValidationError"]
