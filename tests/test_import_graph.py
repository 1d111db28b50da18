"""The package's modules import each other without a cycle, lazy imports included: a cycle is what
forces an import into a function body and makes the layering impossible to read."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_graph() -> dict[str, set[str]]:
    files = {".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): f for f in (SRC / "facegen").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("facegen"):
                # `from pkg import sub` depends on the submodule, not on everything pkg/__init__ imports
                subs = {f"{node.module}.{a.name}" for a in node.names} & files.keys()
                deps |= subs or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("facegen")}
        graph[name] = {d for d in deps if d in files and d != name and not name.startswith(d + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph with each module folded into its part of facegen: facegen.training.run into
    facegen.training, facegen.config into itself."""
    def package(module):
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for module, deps in graph.items():
        folded.setdefault(package(module), set()).update(package(d) for d in deps)
    return {p: deps - {p} for p, deps in folded.items()}


def test_the_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_folding_into_packages_sees_a_cycle_no_module_has():
    graph = {"facegen.a.x": {"facegen.b.y"}, "facegen.b.y": {"facegen.a.z"}, "facegen.a.z": set(), "facegen.c": {"facegen.a.x"}}
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == [["facegen.a", "facegen.b"]]


def test_no_import_cycle_in_facegen():
    graph = module_graph()
    assert "facegen.training.matrix" in graph and graph["facegen.evaluation.run"]
    assert cycles(graph) == []


def test_no_import_cycle_between_packages():
    """Nor between the packages: a package that imports another which imports it back cannot be read,
    tested or replaced on its own."""
    packages = package_graph(module_graph())
    assert {"facegen.config", "facegen.training", "facegen.models"} <= packages.keys()
    assert cycles(packages) == []


# Arrows that would run back up the layers: results are read, never recomputed, by those who render
# them; device and download helpers sit below what uses them.
UPWARD = [("findings", "report"), ("evaluation", "training"), ("nets", "data"), ("training", "bench"),
          ("config", "models"), ("evaluation", "findings"), ("report", "findings"), ("devices", "training")]


def test_no_arrow_runs_back_up():
    packages = package_graph(module_graph())
    found = [(a, b) for a, b in UPWARD if f"facegen.{b}" in packages.get(f"facegen.{a}", set())]
    assert found == []


def test_planning_a_study_imports_no_heavy_library():
    """What the Snakefile imports to build its DAG (common.smk's facegen imports) loads none of torch,
    scikit-learn, seaborn, pyplot or torch-fidelity (about 5 s on every snakemake call here); the
    model check that needs torch imports it itself, when it runs."""
    import subprocess
    import sys

    lines = [ln for ln in (SRC.parent / "workflow/rules/common.smk").read_text().splitlines()
             if ln.startswith(("from facegen", "import facegen"))]
    heavy = ("torch", "sklearn", "seaborn", "matplotlib.pyplot", "torch_fidelity")
    probe = "\n".join([*lines, "import sys", f"print([m for m in {heavy!r} if m in sys.modules])"])
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert len(lines) >= 8 and out.strip() == "[]"
