"""fastconv.summary: the worked numbers users learn from."""

import numpy as np
import pytest

import fastconv
import fastconv.nn as nn
from fastconv import models


def test_worked_parameter_counts():
    assert nn.Conv2d(128, 64, 3).weight.data.size == 73_728
    assert nn.Conv2d(256, 128, 1).weight.data.size == 32_768
    s = fastconv.summary(nn.Sequential(nn.Conv2d(128, 64, 3, bias=False)), (1, 128, 8, 8))
    assert s.total_params == 73_728 and s.rows[0].params == 73_728
    assert fastconv.summary(models.AlexNet(), (1, 3, 224, 224)).total_params == 61_100_840


def test_worked_output_shapes_and_macs():
    net = nn.Sequential(nn.Conv2d(1, 5, 5), nn.MaxPool2d(2), nn.Conv2d(5, 16, 5))
    s = fastconv.summary(net, (1, 1, 32, 32))
    assert [r.output_shape for r in s.rows] == [(1, 5, 28, 28), (1, 5, 14, 14), (1, 16, 10, 10)]
    # conv: OC*OH*OW*(C/groups)*KH*KW per sample
    assert s.rows[0].macs == 5 * 28 * 28 * 1 * 25
    assert s.rows[2].macs == 16 * 10 * 10 * 5 * 25
    assert s.rows[1].macs == 0
    assert s.total_macs == s.rows[0].macs + s.rows[2].macs
    # receptive fields: 5, then 5 + 1 = 6, then 6 + 4*2 = 14
    assert [r.receptive_field for r in s.rows] == [5, 6, 14]
    assert [r.params for r in s.rows] == [130, 0, 2016]


def test_lenet_table():
    s = fastconv.summary(models.LeNet5(), (1, 1, 32, 32))
    text = str(s)
    assert "Total params:         61,706" in text
    assert "features.0" in text and "Conv2d" in text and "(1, 6, 28, 28)" in text
    lin = [r for r in s.rows if r.type == "Linear"]
    assert [r.macs for r in lin] == [400 * 120, 120 * 84, 84 * 10]
    assert s.trainable_params == s.total_params == 61_706


def test_grouped_and_strided_macs():
    net = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=False))
    s = fastconv.summary(net, (2, 8, 9, 9))
    assert s.rows[0].output_shape == (2, 16, 5, 5)
    assert s.rows[0].macs == 16 * 5 * 5 * 2 * 9  # per sample, not per batch


def test_buffers_not_counted_and_frozen_params():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net[0].requires_grad_(False)
    s = fastconv.summary(net, (1, 3, 8, 8))
    assert s.total_params == 4 * 3 * 9 + 4 + 8  # BN weight+bias, not its running stats
    assert s.trainable_params == 8


def test_custom_forward_with_residual_and_concat():
    s = fastconv.summary(models.SmallResNet(), (1, 3, 32, 32))
    assert s.rows[-1].output_shape == (1, 10)
    assert s.total_params == models.SmallResNet().num_parameters()
    s = fastconv.summary(models.SmallInception(), (1, 3, 32, 32))
    pool = next(r for r in s.rows if r.name == "pool")
    assert pool.output_shape == (1, 56, 16, 16)
    assert pool.receptive_field == 8  # widest branch (1x1 -> 5x5 after the 3x3 stem) then the 2x2 pool


def test_summary_restores_mode_and_rejects_bad_input():
    m = models.LeNet5()
    m.train()
    fastconv.summary(m, (1, 1, 32, 32))
    assert m.training
    with pytest.raises(TypeError):
        fastconv.summary(object(), (1, 1, 32, 32))
    with pytest.raises(ValueError):
        fastconv.summary(m, (0, 1, 32, 32))


def test_summary_restores_mixed_training_modes():
    m = fastconv.models.CifarVGG(batch_norm=True)
    m.train()
    bn = [mod for mod in m.modules() if isinstance(mod, fastconv.nn.BatchNorm2d)]
    bn[0].eval()  # e.g. frozen batch-norm statistics in one layer
    before = [mod.training for mod in m.modules()]
    fastconv.summary(m, (1, 3, 32, 32))
    assert [mod.training for mod in m.modules()] == before
