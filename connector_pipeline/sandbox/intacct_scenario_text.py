"""What the scenario API accepts as record text: only what the gateway can serve.

XML 1.0 cannot carry most control characters (its `Char` production), and element names
must be valid XML names. A seeded vendor holding either would make every answer that
includes it fail to render, so the scenario API refuses it with a clear message instead
(the real Intacct UI and API do not store such text either).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Characters outside XML 1.0 `Char`: C0 controls except TAB, LF, CR; surrogates; FFFE/FFFF.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def unservable_text(fields: Mapping[str, Any], path: str = "") -> str | None:
    """Why `fields` cannot be served by the gateway, or None when it can."""
    for key, value in fields.items():
        where = f"{path}{key}"
        if not _XML_NAME.match(str(key)):
            return f"field name {where!r} is not a valid XML element name"
        if isinstance(value, Mapping):
            problem = unservable_text(value, f"{where}.")
            if problem:
                return problem
        elif isinstance(value, str):
            bad = _NOT_XML_CHAR.search(value)
            if bad:
                return (
                    f"{where} holds the character U+{ord(bad.group()):04X}, which XML 1.0 "
                    "cannot carry; remove it"
                )
        elif isinstance(value, list):
            return f"{where} is a list; a record field holds text or nested fields"
    return None
