"""End to end on real data: LeNet-5 trained on MNIST digits 0-7999 reads 8000-9999 at >= 97%."""
from pathlib import Path

import pytest

from engine import compile_network
from engine.data import Normalization, load_dataset
from engine.optim import Optimizer
from engine.templates import load_template
from engine.train import Trainer, evaluate

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-10k"


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST data not present")
def test_lenet5_reaches_97_percent_on_mnist():
    data = load_dataset(str(MNIST))
    train, val = data.subset(0, 8000), data.subset(8000, 10000)
    normalization = Normalization.fit(train.x)
    net = compile_network(load_template("lenet5"), seed=0)
    trainer = Trainer(net, Optimizer("adam", lr=2e-3), train.x, train.y, epochs=6,
                      batch_size=64, seed=0, normalization=normalization)
    trainer.run()
    result = evaluate(net, val.x, val.y, normalization=normalization)
    assert result["samples"] == 2000
    assert result["accuracy"] >= 0.97, result
