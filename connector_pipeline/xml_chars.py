"""The one rule for text XML cannot carry, with no dependencies: the Intacct client applies
it when it builds requests, the mappings when they copy text (DESIGN.md decision 11)."""

from __future__ import annotations

import re

# Everything outside the XML 1.0 `Char` production: C0 controls other than tab, LF and CR,
# surrogates (lone ones reach Python strings through surrogateescape and JSON), and
# U+FFFE/U+FFFF. lxml raises on these instead of dropping them.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sanitize_xml_text(text: str) -> str:
    """`text` with every character that XML 1.0 forbids removed (not replaced)."""
    return _NOT_XML_CHAR.sub("", text)
