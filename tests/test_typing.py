"""Static typing: mypy passes on the package (configured by mypy.ini), user code
sees precise types (NumPy in -> ndarray, Tensor in -> Tensor), and the
annotations stay safe for Python 3.9 at run time."""

from __future__ import annotations

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "mypy.ini")
PACKAGE = os.path.join(ROOT, "python", "fastconv")


def _mypy(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)  # mypy.ini's paths are relative to the repository root
    stdout, stderr, status = api.run(["--config-file", CONFIG, "--no-error-summary", *args])
    return stdout + stderr, status


def test_marker_and_stub_ship_with_the_package() -> None:
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
    assert os.path.isfile(os.path.join(PACKAGE, "_core.pyi"))


def test_mypy_passes_on_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    output, status = _mypy([], monkeypatch)
    assert status == 0, f"mypy (mypy.ini) found problems in python/fastconv:\n{output}"


def test_core_stub_covers_the_compiled_module() -> None:
    """Every function and class of fastconv._core that the package uses is in _core.pyi."""
    from fastconv import _core

    with open(os.path.join(PACKAGE, "_core.pyi"), encoding="utf-8") as fh:
        stub = ast.parse(fh.read())
    stubbed = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    used = set()
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    used |= set(re.findall(r"\b_core\.([A-Za-z_]\w*)", fh.read()))
    assert not used - stubbed, f"_core functions used but missing from _core.pyi: {sorted(used - stubbed)}"
    extra = sorted(stubbed - set(dir(_core)))
    assert not extra, f"_core.pyi lists functions the module lacks: {extra}"


USER_CODE = '''
from collections import OrderedDict

import numpy as np
import fastconv
import fastconv.functional as F
from fastconv import nn, optim

x = np.zeros((1, 3, 8, 8), np.float32)
w = np.zeros((4, 3, 3, 3), np.float32)
w2 = np.zeros((2, 2), np.float32)
labels = np.zeros(1, np.int64)
t = fastconv.tensor(x, requires_grad=True)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))

reveal_type(F.conv2d(x, w))  # R: ndarray
reveal_type(F.conv2d(t, w))  # R: Tensor
reveal_type(F.conv2d(x, fastconv.tensor(w)))  # R: Tensor
reveal_type(F.conv2d(x, w, None, 1, "same"))  # R: ndarray
reveal_type(F.linear([[1.0, 2.0]], w2))  # R: ndarray
reveal_type(F.linear(t.flatten(1)[:, :2], w2))  # R: Tensor
reveal_type(F.relu([1.0, -1.0]))  # R: ndarray
reveal_type(F.relu(t))  # R: Tensor
reveal_type(F.max_pool2d(x, 2))  # R: ndarray
reveal_type(F.max_pool2d(t, (2, 2), return_indices=True))  # R: tuple[Tensor, Tensor]
reveal_type(F.max_pool2d(x, 2, return_indices=True))  # R: tuple[ndarray, ndarray]
reveal_type(F.adaptive_avg_pool2d(t, (1, None)))  # R: Tensor
reveal_type(F.cross_entropy(t.flatten(1), labels))  # R: Tensor
reveal_type(F.cross_entropy(x.reshape(1, -1), labels))  # R: ndarray
reveal_type(F.mse_loss(x, x))  # R: ndarray
reveal_type(F.softmax(t, dim=1))  # R: Tensor
reveal_type(F.dropout(x, 0.1, training=False))  # R: ndarray
reveal_type(F.conv2d_backward(x, x, w))  # R: tuple[ndarray | None, ndarray | None, ndarray | None]
reveal_type(fastconv.cat([t, t], dim=1))  # R: Tensor
reveal_type(fastconv.cat([x, x], dim=1))  # R: ndarray
reveal_type(t.sum(dim=(2, 3), keepdim=True))  # R: Tensor
reveal_type(t.size())  # R: tuple[int, ...]
reveal_type(t.size(0))  # R: int
reveal_type(t.grad)  # R: ndarray | None
reveal_type(nn.Conv2d(3, 4, 3).forward(x))  # R: Tensor
reveal_type(nn.ReLU().forward(x))  # R: ndarray
reveal_type(nn.ReLU().forward(t))  # R: Tensor
reveal_type(model[0])  # R: Module
reveal_type(model[1:])  # R: Sequential
reveal_type(nn.Linear(2, 2).eval())  # R: Linear
reveal_type(model.state_dict())  # R: OrderedDict[str, ndarray]
reveal_type(fastconv.load("weights.npz"))  # R: OrderedDict[str, ndarray]
reveal_type(fastconv.summary(model, (1, 3, 8, 8)).total_params)  # R: int
reveal_type(fastconv.build_info())  # R: dict[str, Any]
reveal_type(nn.init.kaiming_uniform_(w))  # R: ndarray

a: np.ndarray = F.conv2d(x, w)
b: fastconv.Tensor = F.conv2d(t, w)
loss: fastconv.Tensor = F.cross_entropy(model(t), labels)
loss.backward()
opt = optim.Adam(model.parameters(), lr=1e-3)
opt.zero_grad()
opt.step()
with fastconv.no_grad():
    pass
missing, unexpected = model.load_state_dict(OrderedDict(model.state_dict()))

bad1: fastconv.Tensor = F.conv2d(x, w)  # E
bad2: np.ndarray = F.relu(t)  # E
F.conv2d(x, w, stride="2")  # E
t.backward(retain_graph="yes")  # E
nn.Conv2d(3, 4, kernel_size=3.5)  # E
fastconv.set_num_threads("2")  # E
'''


def _drop_ndarray_params(text: str) -> str:
    """numpy.ndarray[<shape>, <dtype>] -> ndarray (the parameters differ between NumPy versions)."""
    out: list[str] = []
    i, key = 0, "numpy.ndarray["
    while True:
        j = text.find(key, i)
        if j < 0:
            return "".join(out) + text[i:]
        out.append(text[i:j] + "ndarray")
        depth, k = 1, j + len(key)
        while depth:
            depth += {"[": 1, "]": -1}.get(text[k], 0)
            k += 1
        i = k


def _normalise(type_text: str) -> str:
    """mypy's revealed type with module paths and NumPy's generic parameters dropped."""
    t = _drop_ndarray_params(type_text)
    t = re.sub(r"\b(?:[a-z_][\w]*\.)+([A-Za-z_]\w*)", r"\1", t)  # fastconv.tensor.Tensor -> Tensor
    t = re.sub(r"\bTuple\[", "tuple[", t)
    t = re.sub(r"\bUnion\[(\w+), None\]|\bOptional\[(\w+)\]", lambda m: f"{m.group(1) or m.group(2)} | None", t)
    return t.replace("builtins.", "")


def test_user_code_sees_precise_types(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = tmp_path / "user_code.py"
    snippet.write_text(USER_CODE, encoding="utf-8")
    output, _ = _mypy([str(snippet)], monkeypatch)
    revealed: dict[int, str] = {}
    errors: dict[int, list[str]] = {}
    for line in output.splitlines():
        m = re.match(r".*user_code\.py:(\d+): (note|error): (.*)$", line)
        if not m:
            continue
        lineno, kind, text = int(m.group(1)), m.group(2), m.group(3)
        r = re.match(r'Revealed type is "(.*)"', text)
        if kind == "note" and r:
            revealed[lineno] = _normalise(r.group(1))
        elif kind == "error":
            errors.setdefault(lineno, []).append(text)
    problems = []
    for lineno, line in enumerate(USER_CODE.splitlines(), start=1):
        want = re.search(r"# R: (.*)$", line)
        if want:
            got = revealed.get(lineno)
            if got != want.group(1):
                problems.append(f"line {lineno}: {line.split('#')[0].strip()}\n    expected {want.group(1)}, got {got}")
        expect_error = line.rstrip().endswith("# E")
        if expect_error and lineno not in errors:
            problems.append(f"line {lineno}: expected a type error: {line.split('#')[0].strip()}")
        if not expect_error and lineno in errors:
            problems.append(f"line {lineno}: unexpected error: {errors[lineno]}")
    assert not problems, "\n".join(problems) + f"\n\nmypy output:\n{output}"


def test_annotations_resolve_at_run_time() -> None:
    """typing.get_type_hints works on the public API (tools such as typeguard or
    pydantic evaluate the annotations at run time)."""
    import inspect
    import typing

    import fastconv
    import fastconv.functional as F
    from fastconv import models, nn, optim

    objects = [getattr(F, n) for n in F.__all__]
    objects += [getattr(nn, n) for n in nn.__all__ if n not in ("functional", "init")]
    objects += [getattr(fastconv, n) for n in fastconv.__all__ if callable(getattr(fastconv, n))]
    objects += [getattr(optim, n) for n in optim.__all__] + [models.get_model, models.input_shape]
    objects += [v for v in vars(nn.init).values() if inspect.isfunction(v)]
    bad = []
    for obj in objects:
        targets = [v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else [obj]
        for t in targets:
            try:
                typing.get_type_hints(t)
            except Exception as e:  # noqa: BLE001 - report every failure
                bad.append(f"{t.__module__}.{t.__qualname__}: {e!r}")
    assert not bad, "annotations that do not resolve at run time:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------------------
# Python 3.9 at run time: annotations are strings (PEP 563) but aliases, isinstance
# arguments and other expressions are evaluated, so they must not use `X | Y`.

_TYPE_NAMES = {"int", "float", "str", "bytes", "bool", "complex", "list", "dict", "tuple", "set", "type", "object"}


def _looks_like_type(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Subscript):
        return True
    if isinstance(node, ast.Name):
        return node.id in _TYPE_NAMES or node.id[:1].isupper()
    if isinstance(node, ast.Attribute):
        return node.attr[:1].isupper() or node.attr in ("ndarray", "dtype", "generic")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _looks_like_type(node.left) or _looks_like_type(node.right)
    return False


class _RuntimeUnions(ast.NodeVisitor):
    """`X | Y` of types outside annotations."""

    def __init__(self) -> None:
        self.found: list[int] = []

    def _skip_annotations(self, node: ast.AST, fields: tuple[str, ...]) -> None:
        for name, value in ast.iter_fields(node):
            if name in fields:
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)

    def visit_arg(self, node: ast.arg) -> None:
        pass  # only an annotation lives here

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._skip_annotations(node, ("returns",))

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._skip_annotations(node, ("returns",))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._skip_annotations(node, ("annotation",))

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.BitOr) and _looks_like_type(node.left) and _looks_like_type(node.right):
            self.found.append(node.lineno)
        self.generic_visit(node)


def _sources():
    for dirpath, _, files in os.walk(PACKAGE):
        for f in sorted(files):
            if f.endswith((".py", ".pyi")):
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8") as fh:
                    yield os.path.relpath(path, ROOT), fh.read()


def test_sources_parse_as_python39() -> None:
    bad = []
    for rel, src in _sources():
        if rel.endswith(".pyi"):
            continue
        try:
            ast.parse(src, filename=rel, feature_version=(3, 9))
        except SyntaxError as e:
            bad.append(f"{rel}:{e.lineno}: {e.msg}")
    assert not bad, "syntax newer than Python 3.9:\n" + "\n".join(bad)


def test_no_runtime_pep604_unions() -> None:
    bad = []
    for rel, src in _sources():
        if rel.endswith(".pyi"):
            continue
        tree = ast.parse(src)
        v = _RuntimeUnions()
        v.visit(tree)
        bad += [f"{rel}:{n}" for n in v.found]
        future = any(
            isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
            for n in tree.body
        )
        if not future and re.search(r"(->|:)\s*[^#\n]*\w\s*\|\s*\w", src):
            annotated_unions = [
                node.lineno
                for node in ast.walk(tree)
                if isinstance(node, (ast.arg, ast.AnnAssign, ast.FunctionDef))
                and any(
                    isinstance(x, ast.BinOp) and isinstance(x.op, ast.BitOr)
                    for ann in (getattr(node, "annotation", None), getattr(node, "returns", None))
                    if ann is not None
                    for x in ast.walk(ann)
                )
            ]
            bad += [f"{rel}:{n} (annotation without `from __future__ import annotations`)" for n in annotated_unions]
    assert not bad, "`X | Y` evaluated at run time (a TypeError on Python 3.9); use typing.Union / Optional:\n" + (
        "\n".join(bad)
    )
