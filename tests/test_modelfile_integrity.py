"""Model files that cannot hurt (issue 12): checksums, refusals, schemas, the bounded first read,
saving (temporary files, mode, symlinks) and the engine's import graph."""
import ast
import dataclasses
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from modeldamage import SETTINGS, STRUCTURAL, content, edit, model_with_every_part

from engine import Graph, compile_network, modelfile
from engine.atomic import SUFFIX
from engine.modelfile import ModelFileError, expected_arrays, load_model, save_model
from engine.session import Session
from engine.templates import load_template

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="module")
def full_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / "m.h5"
    save_model(path, **model_with_every_part())
    return path


def test_new_parts_round_trip(full_file):
    args, model = model_with_every_part(), load_model(full_file)
    assert model.settings == SETTINGS and model.training == args["training"]
    assert model.best["epoch"] == 1 and model.best["val_loss"] == 0.5
    for key, value in args["best"]["weights"].items():
        np.testing.assert_array_equal(model.best["weights"][key], value)
    np.testing.assert_array_equal(model.history["val_loss"], [0.5, np.nan])


def test_every_dataset_is_checksummed_and_a_flipped_data_byte_is_caught(full_file, tmp_path):
    with h5py.File(full_file, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert names and all(f[n].fletcher32 for n in names)
        offset = f["weights/dense1/weight"].id.get_chunk_info(0).byte_offset
    data = bytearray(full_file.read_bytes())
    data[offset + 100] ^= 0x01
    (tmp_path / "flipped.h5").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"flipped.h5: the file is truncated or damaged "
                                             r"\(.*filter returned failure"):
        load_model(tmp_path / "flipped.h5")


REFUSALS = [
    ("NaN weight", "/weights/conv1/weight holds NaN"),
    ("NaN best weight", "/best/weights/dense3/bias holds NaN"),
    ("Inf optimizer state", r"/optimizer/state/\S+ holds Inf"),
    ("external storage on /etc/passwd", "/weights/conv1/bias has external storage"),
    ("external storage on a FIFO", "/weights/conv1/bias has external storage"),
    ("external link", "/weights/conv1/bias is an external link"),
    ("soft link", "/weights/conv1/bias is a soft link"),
    ("virtual dataset", "/weights/conv1/bias is a virtual dataset"),
    ("hard link twice", "is linked twice"),
    ("huge chunked history", r"/history/epoch declares \[2000000000\]"),
    ("2-D history", "/history/epoch must be a 1-D numeric dataset"),
    ("gzip weight", "filter other than fletcher32"),
    ("unknown part", "/extra is not a part of a model file"),
    ("training state [1]", r"/training state: \[1\] is not of type 'object'"),
    ("position.batch 10**9", "/training state: position.batch: 1000000000 is greater than the "
                             "maximum of"),
    ("seed -1", "/training state: seed: -1 is less than the minimum of 0"),
    ("unknown optimizer key", r"/optimizer config: Additional properties .*'bogus'"),
    ("schedule kind bogus", "/optimizer config: schedule.kind: 'bogus' is not one of"),
    ("3-channel normalisation", "normalization has 3 means .* Input has 1 channel"),
    ("NaN in JSON", "/data spec is not valid JSON"),
    ("settings with unknown key", "/training settings: Additional properties"),
    ("best val_loss NaN", "/best val_loss: NaN is not a number"),
    ("graph is a list", "graph: .* is not of type 'object'"),
    ("graph nested 100000 deep", "graph is not valid JSON"),
    ("saved_at changed (digest)", "does not match its digest"),
    ("float64 weight", "/weights/conv1/bias has dtype float64, expected float32"),
    ("no complete attribute", "the file is incomplete"),
    ("unknown attribute", "the file has an unknown attribute 'extra'"),
    ("graph 5000-digit integer", "graph is not valid JSON"),
]


def test_every_structural_edit_is_tried():
    assert {name for name, _ in REFUSALS} == set(STRUCTURAL)


@pytest.mark.parametrize("name,fragment", REFUSALS)
def test_each_refusal_names_the_part(full_file, tmp_path, name, fragment):
    save_model(tmp_path / "other.h5", **model_with_every_part())
    path = tmp_path / "m.h5"
    path.write_bytes(full_file.read_bytes())
    edit(path, name, tmp_path)
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=f"^{path}: .*{fragment}"):
        load_model(path)
    assert time.perf_counter() - start < 4.5  # the reader child gives up after 5 s


def test_save_refuses_what_a_load_would_and_keeps_the_old_file(full_file, tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(full_file.read_bytes())
    before = path.read_bytes()
    bad_weights = model_with_every_part()
    bad_weights["weights"]["conv1/weight"][0, 0, 0, 0] = np.nan
    bad_state = model_with_every_part()
    bad_state["optimizer"]["slots"]["conv2/bias"]["v"][3] = np.inf
    bad_training = {**model_with_every_part(), "training": {"seed": -1, "position": {}}}
    bad_spec = model_with_every_part()
    bad_spec["data_spec"]["normalization"] = {"mean": [0.0] * 3, "std": [1.0] * 3}
    bad_name = model_with_every_part()
    bad_name["history"]["val loss/2"] = np.zeros(2)
    for args, fragment in [(bad_weights, "/weights/conv1/weight holds NaN"),
                           (bad_name, "'/history/val loss/2' is not a valid array name"),
                           (bad_state, "/optimizer/state/conv2/bias/v holds Inf"),
                           (bad_training, "/training state: "),
                           (bad_spec, "Input has 1 channel")]:
        with pytest.raises(ModelFileError, match=f"^{path}: cannot save: .*{fragment}"):
            save_model(path, **args)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


OLD_SAVE = """
import json, sys, h5py, numpy as np
from engine.optim import Optimizer
from engine.session import Session, TrainingSettings
from engine.templates import load_template
session = Session(load_template("lenet5"), TrainingSettings(seed=1))
session.optimizer = Optimizer("sgd", lr=0.1)
with h5py.File(sys.argv[1], "w") as f:  # as save_model wrote files before integrity checks
    f.attrs["format"] = "convdesigner.model"
    f.attrs["format_version"] = 1
    f.attrs["graph"] = json.dumps(session.graph.to_dict())
    f.attrs["created_by"] = "convdesigner 0.1.0"
    f.attrs["saved_at"] = "2026-12-01T10:00:00+00:00"
    group = f.create_group("weights")
    for key, value in session.net.weights().items():
        group.create_dataset(key, data=np.asarray(value, np.float32))
    opt = f.create_group("optimizer")
    state = session.optimizer.state_dict()
    opt.attrs["type"] = state["type"]
    opt.attrs["config"] = json.dumps(state["config"])
    opt.create_group("state")
    f.create_group("history").create_dataset("epoch", data=np.asarray([1.0], np.float64))
    f.create_group("data").attrs["spec"] = json.dumps({"source": "shapes"})
    f.create_group("training").attrs["state"] = json.dumps(
        {"seed": 1, "position": {"epoch": 1, "batch": 0, "sums": {
            "loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}}})
    f.attrs["complete"] = True
"""


def test_files_of_the_previous_version_still_open(tmp_path):
    path = tmp_path / "old.h5"
    subprocess.run([sys.executable, "-c", OLD_SAVE, str(path)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    model = load_model(path)
    assert model.optimizer["type"] == "sgd" and model.training["position"]["epoch"] == 1
    assert Session.from_model(model).position.epoch == 1


KEPT = """
import sys, time
from designer.files import FileProblem, load_document
from engine import cli
path, commands = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
try:
    load_document(path)
except FileProblem as err:
    print("Open:", err)
for command in commands:
    args = {"info": [], "evaluate": ["--data", "shapes"], "train": ["--data", "shapes"],
            "predict": ["--input", "x.npy", "--output", "y.npy"]}[command]
    print(command, cli.main([command, path, *args]))
print("seconds per file", (time.perf_counter() - start) / (1 + len(commands)))
"""


@pytest.mark.parametrize("name,commands", [
    ("segfault.h5", ["info", "evaluate", "predict", "train"]), ("hang.h5", ["info"])])
def test_kept_files_give_one_line_from_open_and_every_command(name, commands):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    done = subprocess.run([sys.executable, "-c", KEPT, str(path), *commands], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0].startswith(f"Open: {name}: {path}: ")
    assert lines[1:-1] == [f"{command} 2" for command in commands]
    assert done.stderr.splitlines() == [f"convdesigner {command}: error: {lines[0][len(name) + 8:]}"
                                        for command in commands]
    assert float(lines[-1].split()[-1]) < 8


def test_reader_child_imports_neither_numba_nor_qt():
    code = modelfile._READER.replace("_reader_main()", "import sys; print(sorted(sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    modules = set(eval(done.stdout))  # a list of names printed above
    assert "h5py" in modules
    assert not {m for m in modules if m.split(".")[0] in ("numba", "PySide6", "pyqtgraph",
                                                          "designer")}


def test_an_unchanged_file_is_read_in_a_child_once(full_file, monkeypatch):
    calls = []
    real_probe = modelfile._probe
    monkeypatch.setattr(modelfile, "_probe", lambda *a: (calls.append(a), real_probe(*a)))
    modelfile._probed.clear()
    load_model(full_file)
    load_model(full_file)
    assert len(calls) == 1
    os.utime(full_file)
    load_model(full_file)
    assert len(calls) == 2


KILLER = """
import sys, time
import engine.modelfile as mf
from engine.session import Session
from engine.templates import load_template
session = Session(load_template("vgg-small"))
real_create = mf.h5py.Group.create_dataset
def slow_create(self, *args, **kwargs):
    print("writing", flush=True)
    time.sleep(0.05)
    return real_create(self, *args, **kwargs)
mf.h5py.Group.create_dataset = slow_create
session.save(sys.argv[1])
"""


def killed_save(path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], cwd=ROOT,
                               stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout.readline().startswith(b"writing")
    process.kill()
    process.wait()
    process.stdout.close()


@pytest.mark.parametrize("then", ["save", "open"])
def test_a_killed_save_leaves_no_temporary_file_after_the_next_save_or_open(tmp_path, then):
    path = tmp_path / "m.h5"
    session = Session(load_template("lenet5"))
    session.save(path)
    killed_save(path)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(SUFFIX)]
    foreign = tmp_path / ".m.h5.123.tmp"
    foreign.write_text("not ours")
    session.save(path) if then == "save" else load_model(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name, "m.h5"]


def test_save_keeps_the_mode_and_a_new_file_gets_the_umask_default(tmp_path):
    session = Session(load_template("lenet5"))
    old_umask = os.umask(0o022)
    try:
        session.save(tmp_path / "new.h5")
        assert stat.S_IMODE(os.stat(tmp_path / "new.h5").st_mode) == 0o644
        os.chmod(tmp_path / "new.h5", 0o640)
        session.save(tmp_path / "new.h5")
        assert stat.S_IMODE(os.stat(tmp_path / "new.h5").st_mode) == 0o640
    finally:
        os.umask(old_umask)


def test_save_through_a_symlink_writes_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "m.h5", tmp_path / "link.h5"
    link.symlink_to(target)
    session = Session(load_template("lenet5"))
    session.save(link)
    assert link.is_symlink() and target.is_file()
    load_model(link)


def engine_import_graph() -> dict[str, set[str]]:
    """Every import between engine modules (lazy ones included), by module name."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "engine").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                    if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                found |= {module} | {f"{module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_engine_modules_import_no_circle():
    graph, done, path = engine_import_graph(), set(), []

    def visit(name):
        if name in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_a_graph_over_64_kb_round_trips(tmp_path):
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [2, 4]}}]
    nodes += [{"id": f"relu_{i:04d}", "type": "Activation", "params": {"function": "relu"},
               "pos": [i * 10.5, i * 3.25]} for i in range(500)]
    nodes += [{"id": "flat", "type": "Flatten"}, {"id": "dense", "type": "Dense",
                                                   "params": {"units": 3}},
              {"id": "out", "type": "Output"}]
    ids = [n["id"] for n in nodes]
    graph = Graph.from_dict({"format": "convdesigner.graph", "version": 1, "nodes": nodes,
                             "edges": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]})
    assert len(json.dumps(graph.to_dict())) > 65536
    save_model(tmp_path / "big.h5", graph, compile_network(graph).weights())
    assert load_model(tmp_path / "big.h5").graph == graph


def test_public_names_still_import():
    from engine.backend import BackendError, get_backend  # noqa: F401
    from engine.modelfile import atomic_write_text

    assert BackendError.__module__ == "engine.errors"
    assert callable(atomic_write_text) and callable(expected_arrays)


def test_content_helper_sees_every_field(full_file):
    model = load_model(full_file)
    assert set(content(model)) == {f.name for f in dataclasses.fields(model)}


FULL_DISK_SAVE = """
import resource, signal, sys
from engine.session import Session
session = Session.open("lenet5")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    session.save(sys.argv[1])
except Exception as err:
    print(type(err).__name__, err)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE")
def test_a_save_that_runs_out_of_room_fails_in_one_line_and_keeps_the_old_file(tmp_path):
    """The file is written past what the disk takes (a file size limit, as a full disk): one
    line, the old file as it was, no temporary left (libhdf5 failing mid-file printed its
    internals, and the command line crashed on closing)."""
    path = tmp_path / "model.h5"
    path.write_bytes(b"the old file")
    done = subprocess.run([sys.executable, "-c", FULL_DISK_SAVE, str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ModelFileError {path}: cannot save: [Errno 27] File too large"
    assert "HDF5" not in done.stderr and "Exception ignored" not in done.stderr
    assert path.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]
