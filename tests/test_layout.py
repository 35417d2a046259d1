"""The shape of the code and its documents: imports that point one way (no cycle, even through an
import inside a function; each layer of restore/ imports only the layers below it; degradations
never imports solvers), no test, script or module loading a file by its path (but the plugin loader,
which imports the user's files named in ANYTIME_RESTORE_PLUGINS), and every relative
link in README.md and docs/, and every docs page the code cites, pointing at something that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("restore", "solvers", "degradations")
#: restore's layers, lowest first: a module may import its own layer's modules and those of lower
#: layers only (the order README.md's layout section shows)
LAYERS = [
    {"restore.errors", "restore.paths"},
    {"restore.names"},
    {"restore.settings", "restore.io", "restore.quality"},
    {"restore.models"},
    {"restore.restoration"},
    {"restore.outputs"},
    {"restore.api"},
    {"restore.evaluation", "restore.training"},
    {"restore.studies", "restore.page"},
    {"restore.cli", "restore.bench"},
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (inside functions too), except under TYPE_CHECKING."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        targets = set()
        for imported in _imports(path):
            # `from restore.models import prior` names the module restore.models.prior
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def _layer(module: str) -> int | None:
    for rank, layer in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return rank
    return None


def test_no_import_cycles():
    graph = _graph()
    cycles, state = [], {}

    def walk(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    assert cycles == []


def test_every_restore_module_has_a_layer():
    graph = _graph()
    assert [m for m in graph if m.startswith("restore.") and _layer(m) is None] == []


def test_the_layers_import_downwards_only():
    bad = []
    for module, targets in _graph().items():
        rank = _layer(module)
        if rank is None:
            continue
        own = next(m for m in LAYERS[rank] if module == m or module.startswith(m + "."))
        for target in targets:
            there = _layer(target)
            if there is not None and (there > rank or (there == rank and not target.startswith(own))):
                bad.append(f"{module} -> {target}")
    assert bad == []


def test_the_solvers_and_operators_know_nothing_of_restore_and_operators_nothing_of_solvers():
    graph = _graph()
    assert [f"{m} -> {t}" for m, ts in graph.items() if not m.startswith("restore") for t in ts
            if t.startswith("restore")] == []
    assert [f"{m} -> {t}" for m, ts in graph.items() if m.startswith("degradations") for t in ts
            if t.startswith("solvers")] == []


#: the one module whose job is to import a file by its path: a user's own declarations, named in
#: ANYTIME_RESTORE_PLUGINS (files outside the repository, never one of its own)
USER_FILE_LOADER = "degradations/plugins.py"


def test_nothing_loads_a_file_by_its_path():
    offenders = [str(p.relative_to(REPO)) for folder in ("tests", "scripts", *PACKAGES)
                 for p in (REPO / folder).rglob("*.py")
                 if p.name != "test_layout.py" and "spec_from_file_location" in p.read_text(encoding="utf-8")]
    assert offenders == [USER_FILE_LOADER]
    # and it loads only what the environment variable names: no path of the repository in it
    text = (REPO / USER_FILE_LOADER).read_text(encoding="utf-8")
    assert "__file__" not in text and "Path(item)" in text


# --------------------------------------------------------------------------- documents
def _markdown() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "configs" / "README.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        where = (page.parent / file).resolve() if file else page
        if not where.exists():
            broken.append(target)
        elif anchor and where.suffix == ".md" and anchor not in _anchors(where):
            broken.append(target)
    assert broken == []


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_docs_pages_cited_in_the_code_exist():
    cited = set()
    for folder in ("restore", "solvers", "degradations", "scripts", "tests", "configs"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".yaml", ".sh", ".md") and path.is_file():
                cited |= {(m, path.name) for m in re.findall(r"docs/[\w./-]+\.md", path.read_text(encoding="utf-8"))}
    assert cited, "the code cites no docs page: the pattern is wrong"
    assert sorted((c, f) for c, f in cited if not (REPO / c).is_file()) == []
    assert not [f for f in (REPO / "restore").rglob("*.py") if re.search(r"\(README, ['\"]", f.read_text())]


def test_scripts_and_modules_named_in_the_documents_exist():
    text = "\n".join(p.read_text(encoding="utf-8") for p in _markdown())
    scripts = set(re.findall(r"scripts/[\w]+\.(?:py|sh)", text))
    modules = set(re.findall(r"\brestore/[\w/]+\.py", text))
    assert scripts and modules
    assert sorted(p for p in scripts | modules if not (REPO / p).is_file()) == []
