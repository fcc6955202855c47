"""The training panels (pyqtgraph): Train, Curves, Filters, Activations, Saliency, Confusion,
Layers and Runs; each is a QWidget that takes the TrainingController."""
from __future__ import annotations

from .activations import ActivationsPanel
from .confusion import ConfusionPanel
from .curves import CurvesPanel
from .filters import FiltersPanel
from .layers import LayersPanel
from .runs import RunsPanel
from .saliency import SaliencyPanel
from .train import TrainPanel

PANELS = {"Train": TrainPanel, "Curves": CurvesPanel, "Filters": FiltersPanel,
          "Activations": ActivationsPanel, "Saliency": SaliencyPanel,
          "Confusion": ConfusionPanel, "Layers": LayersPanel, "Runs": RunsPanel}


def make_panels(controller) -> dict:
    """{title: panel} for every training panel, in dock order."""
    return {title: cls(controller) for title, cls in PANELS.items()}


__all__ = ["PANELS", "ActivationsPanel", "ConfusionPanel", "CurvesPanel", "FiltersPanel",
           "LayersPanel", "RunsPanel", "SaliencyPanel", "TrainPanel", "make_panels"]
