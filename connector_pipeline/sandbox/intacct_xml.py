"""How the sandbox gateway reads request XML: its own hardened lxml parse.

The sandbox deliberately shares no XML code with the Intacct client (DESIGN: "the
sandboxes import nothing from the clients"), so a mistake in the client's reading or
writing of XML cannot be mirrored here and pass unnoticed.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

# The real gateway caps request size; the documented limit is not public, so the
# sandbox refuses anything far beyond what a 100-record write can need.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
_DECLARATIONS = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """The request body is not XML the gateway will read."""


def _parser() -> etree.XMLParser:
    # No DTD, no entity expansion, no network: a request is data, never instructions.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_request_xml(body: bytes) -> Any:
    """The root element of a request, or UnsafeXml saying why it was refused."""
    if len(body) > MAX_REQUEST_BYTES:
        raise UnsafeXml(f"request of {len(body)} bytes exceeds {MAX_REQUEST_BYTES}")
    if not body.strip():
        raise UnsafeXml("empty request body")
    if _DECLARATIONS.search(body):
        raise UnsafeXml("document type and entity declarations are not accepted")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML ({exc.msg})") from None
    return root


def element_value(el: etree._Element) -> Any:
    """A leaf is its text ('' when empty); otherwise a dict of children (repeats -> list)."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return el.text or ""
    out: dict[str, Any] = {}
    for child in children:
        key = str(child.tag)
        value = element_value(child)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out
