"""Ready definitions of the small CNNs people study.

Layer names follow the PyTorch definitions users know (torchvision's AlexNet
layout: ``features`` / ``avgpool`` / ``classifier``), so the same model
defined in PyTorch loads here by its state_dict. Every model takes NCHW input
(``input_shape(name)`` gives the (C, H, W) it expects) and returns logits
(N, num_classes).

>>> net = fastconv.models.get_model("resnet_small", num_classes=100)
>>> fastconv.models.input_shape("resnet_small")
(3, 32, 32)
>>> net.eval()(np.zeros((2, 3, 32, 32), np.float32)).shape
(2, 100)
>>> sorted(fastconv.models.MODELS)[:3]
['alexnet', 'allconv', 'cifar_vgg']
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Sequence

from . import nn
from ._typing import TensorLike
from .tensor import Tensor, cat


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: 1x32x32 -> 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5 -> 120 -> 84 -> classes.

    >>> fastconv.models.LeNet5()(np.zeros((1, 1, 32, 32), np.float32)).shape
    (1, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x: TensorLike) -> Tensor:
        return self.classifier(self.features(x))


class AlexNet(nn.Module):
    """AlexNet in torchvision's layout (61,100,840 parameters for 1000 classes); input 3x224x224.

    >>> fastconv.models.AlexNet().num_parameters()
    61100840
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: TensorLike) -> Tensor:
        y = self.avgpool(self.features(x))
        return self.classifier(y.flatten(1))


class CifarVGG(nn.Module):
    """A small VGG for 3x32x32: conv64-64-pool-128-128-pool-256-pool-fc (3x3 convs, padding 1).

    ``batch_norm=True`` puts a BatchNorm2d after every conv (and drops the conv biases).

    >>> fastconv.models.CifarVGG()(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 10)
    """

    def __init__(self, num_classes: int = 10, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in (64, 64, "M", 128, 128, "M", 256, "M"):
            if isinstance(v, str):  # "M"
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256 * 4 * 4, num_classes)

    def forward(self, x: TensorLike) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and a residual connection (1x1 strided projection when the shape changes).

    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).

    >>> block = fastconv.models.BasicBlock(16, 32, stride=2).eval()
    >>> block(np.zeros((1, 16, 8, 8), np.float32)).shape
    (1, 32, 4, 4)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: TensorLike) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    """A CIFAR ResNet: 3x3 stem, three stages of BasicBlocks (strided convs, no pooling), global average pool.

    >>> fastconv.models.SmallResNet(widths=(8, 16, 32), blocks_per_stage=1).eval()(
    ...     np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 10)
    """

    def __init__(self, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64), blocks_per_stage: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages: list[nn.Sequential] = []
        c = widths[0]
        for i, w in enumerate(widths):
            blocks: list[nn.Module] = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(c, w, stride=2 if (b == 0 and i > 0) else 1))
                c = w
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: TensorLike) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


class InceptionBlock(nn.Module):
    """GoogLeNet-style block: 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches concatenated on channels.

    (N, in_channels, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W).

    >>> block = fastconv.models.InceptionBlock(8, 4, 4, 8, 2, 4, 4)
    >>> block.out_channels, block(np.zeros((1, 8, 6, 6), np.float32)).shape
    (20, (1, 20, 6, 6))
    """

    def __init__(
        self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, c1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(
            nn.Conv2d(in_channels, c3_reduce, 1), nn.ReLU(), nn.Conv2d(c3_reduce, c3, 3, padding=1), nn.ReLU()
        )
        self.branch3 = nn.Sequential(
            nn.Conv2d(in_channels, c5_reduce, 1), nn.ReLU(), nn.Conv2d(c5_reduce, c5, 5, padding=2), nn.ReLU()
        )
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU())
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: TensorLike) -> Tensor:
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class SmallInception(nn.Module):
    """Stem conv, two inception blocks, pooling between, global average pool, classifier (3x32x32 input).

    >>> fastconv.models.SmallInception(num_classes=5)(np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 5)
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU())
        self.block1 = InceptionBlock(32, 16, 16, 24, 4, 8, 8)
        self.pool = nn.MaxPool2d(2)
        self.block2 = InceptionBlock(self.block1.out_channels, 24, 24, 32, 8, 16, 16)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.block2.out_channels, num_classes)

    def forward(self, x: TensorLike) -> Tensor:
        x = self.block2(self.pool(self.block1(self.stem(x))))
        return self.fc(self.avgpool(x).flatten(1))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (bottleneck) then BN-ReLU-3x3 producing ``growth_rate`` new channels.

    >>> fastconv.models.DenseLayer(8, growth_rate=4).eval()(np.zeros((1, 8, 5, 5), np.float32)).shape
    (1, 4, 5, 5)
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: TensorLike) -> Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    """Each layer sees the concatenation of the block input and every earlier layer's output.

    (N, in_channels, H, W) -> (N, in_channels + num_layers * growth_rate, H, W).

    >>> fastconv.models.DenseBlock(3, 8, 4).eval()(np.zeros((1, 8, 5, 5), np.float32)).shape
    (1, 20, 5, 5)
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth_rate, growth_rate) for i in range(num_layers))
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: TensorLike) -> Tensor:
        features: list[Any] = [x]
        for layer in self.layers:
            features.append(layer(cat(features, dim=1)))
        return cat(features, dim=1)


class SmallDenseNet(nn.Module):
    """A small DenseNet for 3x32x32: stem, dense block, transition (1x1 + avg pool), dense block, classifier.

    >>> fastconv.models.SmallDenseNet().eval()(np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 10)
    """

    def __init__(self, num_classes: int = 10, growth_rate: int = 12, layers: Sequence[int] = (4, 4)) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 2 * growth_rate, 3, padding=1, bias=False)
        self.block1 = DenseBlock(layers[0], 2 * growth_rate, growth_rate)
        c = self.block1.out_channels
        self.transition = nn.Sequential(
            nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)
        )
        self.block2 = DenseBlock(layers[1], c // 2, growth_rate)
        c = self.block2.out_channels
        self.norm = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: TensorLike) -> Tensor:
        x = self.block2(self.transition(self.block1(self.stem(x))))
        return self.fc(self.avgpool(self.relu(self.norm(x))).flatten(1))


class AllConvNet(nn.Module):
    """All-convolutional net (Springenberg et al., "Striving for Simplicity"): strided 3x3 convs replace pooling.

    >>> fastconv.models.AllConvNet(width=8)(np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 10)
    """

    def __init__(self, num_classes: int = 10, width: int = 48) -> None:
        super().__init__()
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, w1, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(w1, w1, 3, padding=1)), ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(w1, w1, 3, stride=2, padding=1)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(w1, w2, 3, padding=1)), ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(w2, w2, 3, padding=1)), ("relu5", nn.ReLU()),
            ("conv6", nn.Conv2d(w2, w2, 3, stride=2, padding=1)), ("relu6", nn.ReLU()),
            ("conv7", nn.Conv2d(w2, w2, 3, padding=1)), ("relu7", nn.ReLU()),
            ("conv8", nn.Conv2d(w2, w2, 1)), ("relu8", nn.ReLU()),
            ("conv9", nn.Conv2d(w2, num_classes, 1)),
        ]))
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: TensorLike) -> Tensor:
        return self.avgpool(self.features(x)).flatten(1)


#: name -> (constructor, input shape (C, H, W) of one sample)
MODELS: dict[str, tuple[Callable[..., nn.Module], tuple[int, int, int]]] = {
    "lenet5": (LeNet5, (1, 32, 32)),
    "alexnet": (AlexNet, (3, 224, 224)),
    "cifar_vgg": (CifarVGG, (3, 32, 32)),
    "cifar_vgg_bn": (lambda **kw: CifarVGG(batch_norm=True, **kw), (3, 32, 32)),
    "resnet_small": (SmallResNet, (3, 32, 32)),
    "inception_small": (SmallInception, (3, 32, 32)),
    "densenet_small": (SmallDenseNet, (3, 32, 32)),
    "allconv": (AllConvNet, (3, 32, 32)),
}


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model of the zoo by name (see ``MODELS``); ``kwargs`` go to its constructor.

    >>> type(fastconv.models.get_model("lenet5", num_classes=2)).__name__
    'LeNet5'
    """
    try:
        ctor, _ = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None
    return ctor(**kwargs)


def input_shape(name: str) -> tuple[int, int, int]:
    """The (C, H, W) a model of the zoo expects.

    >>> fastconv.models.input_shape("alexnet")
    (3, 224, 224)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name][1]


lenet5 = LeNet5
alexnet = AlexNet
cifar_vgg = CifarVGG
resnet_small = SmallResNet
inception_small = SmallInception
densenet_small = SmallDenseNet
allconv = AllConvNet
