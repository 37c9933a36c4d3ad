"""Golden tests: the XML the Intacct client sends for `query` (with a filter and an order),
`readByQuery`, `create`, `update` and `delete` is the XML of the request examples in
../shared/reference/intacct-api.md, element for element. The same examples are then sent
to the sandbox gateway, which must accept them: client, sandbox and reference agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from lxml import etree

from connector_pipeline import settings
from connector_pipeline.intacct import filters as f
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.xml import Function, Login, build_request
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, create_app
from connector_pipeline_tests.support import REPO_ROOT, in_ci, serve_asgi

REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "intacct-api.md"
Canon = tuple[str, str, tuple[Any, ...]]


def reference_text() -> str:
    if not REFERENCE.is_file():
        message = f"API reference not found at {REFERENCE}"
        if in_ci():
            pytest.fail(message + " (CI=true: the reference is required)")
        pytest.skip(message)
    return REFERENCE.read_text(encoding="utf-8")


def example(root_tag: str) -> etree._Element:
    """The first fenced example whose XML starts with `<root_tag>`, parsed. Annotations
    the reference writes inside examples are dropped: comments (by the parser) and the
    bracketed list of optional elements (`[<returnFormat>…] [<docparid/>]`)."""
    for block in re.findall(r"```\n(.*?)```", reference_text(), flags=re.DOTALL):
        if block.lstrip().startswith(f"<{root_tag}>"):
            lines = [line for line in block.splitlines() if not line.strip().startswith("[<")]
            wrapped = "<examples>" + "\n".join(lines) + "</examples>"
            parser = etree.XMLParser(remove_comments=True, resolve_entities=False)
            return etree.fromstring(wrapped.encode(), parser)
    raise AssertionError(f"no <{root_tag}> example in {REFERENCE}")


def canon(el: etree._Element) -> Canon:
    children = tuple(canon(c) for c in el if isinstance(c.tag, str))
    return (str(el.tag), (el.text or "").strip() if not children else "", children)


def without(el: etree._Element, path: str) -> etree._Element:
    for found in el.findall(path):
        parent = found.getparent()
        assert parent is not None
        parent.remove(found)
    return el


def test_query_with_filter_and_order_is_the_documented_request() -> None:
    (documented,) = example("query")
    # The example spells out returnformat=xml, the default; the client leaves it to the
    # default, so the example is compared without it.
    documented = without(documented, "options/returnformat")
    sent = fn.query(
        "VENDOR",
        ["RECORDNO", "VENDORID", "WHENMODIFIED"],
        filter=f.and_(f.gt("WHENMODIFIED", "01/31/2024 10:00:00"), f.eq("STATUS", "active")),
        orderby=[("WHENMODIFIED", True), ("RECORDNO", True)],
        pagesize=2000,
        offset=0,
    )
    assert canon(sent) == canon(documented)


def test_read_by_query_is_the_documented_request() -> None:
    (documented,) = example("readByQuery")
    sent = fn.read_by_query(
        "VENDOR",
        ["RECORDNO", "VENDORID", "NAME", "WHENMODIFIED"],
        "WHENMODIFIED >= '01/31/2024 10:00:00'",
        1000,
    )
    assert canon(sent) == canon(documented)
    # On the wire `>` is an entity, as the reference's example writes it.
    assert b"<query>WHENMODIFIED &gt;= '01/31/2024 10:00:00'</query>" in etree.tostring(sent)


def test_create_update_delete_are_the_documented_requests() -> None:
    create, update, delete = example("create")
    ticket = create[0].tag
    assert canon(
        fn.create(ticket, [{"name": "ZD-12345", "ticket_status": "open", "RVENDOR": "…"}])
    ) == canon(create)
    assert canon(fn.update(ticket, [{"id": "34923", "ticket_status": "solved"}])) == canon(update)
    assert canon(fn.delete(ticket, ["41145", "41146"])) == canon(delete)


# ----------------------------------------------------------------------------- sandbox


@pytest.fixture
def gateway() -> Iterator[tuple[str, IntacctSandboxConfig]]:
    config = IntacctSandboxConfig(seed_vendors=20)
    with serve_asgi(create_app(config)) as server:
        yield server.url + settings.INTACCT_SANDBOX_PATH, config


@pytest.mark.parametrize("root_tag", ["query", "readByQuery"])
def test_the_sandbox_answers_the_documented_reads(
    gateway: tuple[str, IntacctSandboxConfig], root_tag: str
) -> None:
    (documented,) = example(root_tag)
    url, config = gateway
    body = build_request(
        sender_id=config.sender_id,
        sender_password=config.sender_password,
        control_id="golden",
        functions=[Function("golden", documented)],
        login=Login(config.user_id, config.company_id, config.user_password),
    )
    answer = etree.fromstring(httpx.post(url, content=body, timeout=30).content)
    assert answer.findtext("operation/result/status") == "success", etree.tostring(answer)
    assert answer.find("operation/result/data") is not None
