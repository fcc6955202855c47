"""Type-to-add finds modules by the names people know them by, the network's kind first."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import drop_module

from designer.canvas.quickadd import rank_types


@pytest.mark.parametrize("typed, first", [
    ("maxpool", "Pool2D"), ("avgpool", "Pool2D"), ("max", "Pool2D"), ("pool", "Pool2D"),
    ("conv", "Conv2D"), ("fc", "Dense"), ("linear", "Dense"), ("relu", "Activation"),
    ("bn", "BatchNorm"), ("batchnorm", "BatchNorm"), ("dropout", "Dropout"),
    ("softmax", "Softmax"), ("flatten", "Flatten"), ("Batch Norm", "BatchNorm")])
def test_synonyms_rank_the_two_dimensional_type_first(typed, first):
    assert rank_types(typed, dims=2)[0] == first


def test_dimensionality_decides_between_pools():
    assert rank_types("pool", dims=1)[0] == "Pool1D"
    in_2d = rank_types("pool", dims=2)
    assert in_2d.index("Pool2D") < in_2d.index("GlobalPool") < in_2d.index("Pool1D")
    assert rank_types("conv", dims=3)[0] == "Conv3D"
    assert rank_types("maxpool", dims=3)[0] == "Pool3D"


def test_tab_then_maxpool_adds_the_networks_pool(window):
    drop_module(window, "Input", (0, 0))  # [1, 28, 28]: a 2D network
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key_Tab)
    QTest.keyClicks(window.view.quick_add.search, "maxpool")
    assert window.view.quick_add.results.item(0).text() == "Pool2D"
    QTest.keyClick(window.view.quick_add.search, Qt.Key_Return)
    assert window.document.graph.nodes["pool1"].type == "Pool2D"


def test_palette_search_knows_the_synonyms(window):
    window.palette_panel.search.setText("fc")
    assert window.palette_panel.visible_types() == ["Dense"]
