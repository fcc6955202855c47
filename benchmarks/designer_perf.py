"""Designer responsiveness on a 300-node graph: open, move a node, edit a parameter (each with
shape inference and a synchronous repaint). Run: PYTHONPATH=. python benchmarks/designer_perf.py
(QT_QPA_PLATFORM=offscreen on a machine without a display)."""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QStandardPaths  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

NODES = 300


def residual_graph(count: int) -> dict:
    """count nodes: Input and a stem conv, residual blocks conv -> bn -> relu -> conv ->
    add(skip) -> relu, Dropouts to make up the count, global pooling, a dense layer, the output."""
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
             {"id": "stem", "type": "Conv2D", "params": {"filters": 16, "kernel_size": 3,
                                                         "padding": "same"}}]
    edges = [{"from": "input", "to": "stem", "port": 0}]
    previous, block = "stem", 0
    while len(nodes) + 6 + 3 <= count:
        block += 1
        names = [f"b{block}_{n}" for n in ("conv1", "bn", "relu1", "conv2", "add", "relu2")]
        types = ["Conv2D", "BatchNorm", "Activation", "Conv2D", "Add", "Activation"]
        for name, kind in zip(names, types, strict=True):
            params = {"filters": 16, "kernel_size": 3, "padding": "same"} if kind == "Conv2D" \
                else {}
            nodes.append({"id": name, "type": kind, "params": params})
        chain = [previous, *names[:4]]
        edges += [{"from": a, "to": b, "port": 0} for a, b in zip(chain, chain[1:], strict=False)]
        edges += [{"from": names[3], "to": names[4], "port": 0},
                  {"from": previous, "to": names[4], "port": 1},
                  {"from": names[4], "to": names[5], "port": 0}]
        previous = names[5]
    extra = [(f"drop{i}", "Dropout", {}) for i in range(count - len(nodes) - 3)]
    head = [("gpool", "GlobalPool", {}), ("dense", "Dense", {"units": 10}),
            ("output", "Output", {})]
    for name, kind, params in extra + head:
        nodes.append({"id": name, "type": kind, "params": params})
        edges.append({"from": previous, "to": name, "port": 0})
        previous = name
    return {"format": "convdesigner.graph", "version": 1, "name": "perf", "nodes": nodes,
            "edges": edges}


def timed(action, window) -> float:
    start = time.perf_counter()
    action()
    window.view.viewport().repaint()
    return (time.perf_counter() - start) * 1000


def report(name: str, samples: list[float]) -> None:
    print(f"{name:38s} median {statistics.median(samples):6.2f} ms   "
          f"max {max(samples):6.2f} ms   ({len(samples)} runs)")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("convdesigner-bench")
    from designer.app import MainWindow

    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    doc = residual_graph(NODES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "perf.json"
        path.write_text(json.dumps(doc))
        start = time.perf_counter()
        window.open_file(path)
        window.view.viewport().repaint()
        opened = (time.perf_counter() - start) * 1000
    document = window.document
    assert len(document.graph.nodes) == NODES and document.analysis.ok, document.analysis.errors
    print(f"{NODES}-node graph, {len(document.graph.edges)} wires, "
          f"{sum(document.analysis.param_counts.values()):,} weights")
    print(f"{'open (load, analyse, build, fit, paint)':38s} {opened:6.1f} ms  (budget 1000 ms)")

    target = "b20_conv1"
    window.scene.select_nodes([target])  # the Properties panel follows, as for a user
    for zoom, label in ((None, "whole graph in view"), (1.0, "100 % zoom")):
        if zoom is None:
            window.view.fit_all()
        else:
            window.view.set_zoom(zoom)
            window.view.centerOn(window.scene.node_items[target])
        app.processEvents()
        item = window.scene.node_items[target]
        moves, drags, edits = [], [], []
        for step in range(30):
            x, y = document.graph.nodes[target].pos
            moves.append(timed(lambda x=x, y=y: document.move_nodes({target: (x, y + 10)}),
                               window))
            drags.append(timed(lambda item=item: item.setPos(item.pos().x() + 3, item.pos().y()),
                               window))
            filters = 16 if step % 2 else 8  # changes the shapes inside the block
            edits.append(timed(lambda f=filters: document.set_param(target, "filters", f),
                               window))
        print(f"-- {label} (zoom {window.view.zoom():.2f})")
        report("move a node (command + repaint)", moves)
        report("drag frame (item follows mouse)", drags)
        report("edit a parameter (inference+repaint)", edits)
    started = time.perf_counter()
    for _ in range(20):
        document.graph.analyze()
    print(f"{'Graph.analyze() alone':38s} {(time.perf_counter() - started) * 50:6.2f} ms")
    window.document.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
