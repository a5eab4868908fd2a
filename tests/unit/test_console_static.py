"""The console's static files: everything the pages load is shipped, reachable by the file
route, and covered by the package data globs (so a non-editable install has it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from sogni_intelligence.api import errors
from sogni_intelligence.api.console import api_router
from sogni_intelligence.api.console.api_router import FILE_NAME, router

STATIC = Path(api_router.__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*['"](\.{1,2}/[^'"]+)['"]""")
LINK = re.compile(r"""(?:src|href)="([a-z0-9_/.-]+\.(?:js|css|svg))\"""")


def shipped() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


def test_every_file_matches_the_route_and_the_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["sogni_intelligence.api.console"]
    for path in shipped():
        name = path.relative_to(STATIC).as_posix()
        assert FILE_NAME.match(name), name
        assert any(path.relative_to(STATIC.parent).match(g) for g in globs), name


def test_every_import_and_link_resolves() -> None:
    for path in shipped():
        text = path.read_text()
        pattern = IMPORT if path.suffix == ".js" else LINK
        for target in pattern.findall(text):
            assert (path.parent / target).resolve().is_file(), f"{path.name} -> {target}"


def test_files_are_served_with_a_policy_and_nothing_else_is() -> None:
    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    client = TestClient(app)
    page = client.get("/console/")
    assert (
        page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    )
    script = client.get("/console/views/detail.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    for bad in ("/console/../app.py", "/console/api_router.py", "/console/views/../../x.js"):
        assert client.get(bad).status_code == 404, bad
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"
