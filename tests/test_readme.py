"""The README's Python examples run as written (the PyTorch-interop block needs torch)."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i, tmp_path, monkeypatch):
    code = BLOCKS[i]
    monkeypatch.chdir(tmp_path)
    ns = {}
    # blocks build on earlier ones (imports, arrays), as a reader would run them in order
    prelude = "\n".join(b for b in BLOCKS[:i] if "torch_model" not in b)
    if "torch_model" in code:
        torch = pytest.importorskip("torch")
        import fastconv

        torch.manual_seed(0)
        ns["torch_model"] = _torch_alexnet(torch)
    with warnings.catch_warnings():
        # torch.onnx.export(dynamo=False) warns that the TorchScript exporter is deprecated (from
        # inside torch); the README uses it because the new exporter needs onnxscript
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        exec(compile(prelude + "\n" + code, f"README block {i}", "exec"), ns)
    if "torch_model" in code:
        # the loaded model computes what the PyTorch model computes
        import numpy as np

        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        ns["model"].eval()
        ns["torch_model"].eval()
        with fastconv.no_grad(), torch.no_grad():
            got = ns["model"](x).numpy()
            want = ns["torch_model"](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _torch_alexnet(torch):
    nn = torch.nn

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, 1000),
            )

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return AlexNet()
