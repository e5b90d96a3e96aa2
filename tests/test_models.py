"""Models: shapes, output grid, torchvision-name strict loading, attention fusion, init."""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch
from torch import hub, nn

from lipkit.models import (ASPP_RATES, PretrainedWeightsError, build_backbone, build_model,
                           load_backbone_state_dict, small_model_kwargs)

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
BACKBONES = RESNETS + ("vgg16",)
K = 20


def _combos():
    for arch in ("deeplabv2", "attention"):
        for bb in BACKBONES:
            for stride in ((8,) if bb == "vgg16" else (8, 16)):
                yield arch, bb, stride


# ---------------------------------------------------------------- expected torchvision keys
def _bn(shapes: dict, name: str, c: int) -> None:
    for p in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{name}.{p}"] = (c,)
    shapes[f"{name}.num_batches_tracked"] = ()


def torchvision_resnet_shapes(depth: int) -> dict[str, tuple[int, ...]]:
    """Keys/shapes of torchvision's resnet{depth} state dict, from He et al.'s architecture rules."""
    counts = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    s: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}
    _bn(s, "bn1", 64)
    inplanes = 64
    for i, n in enumerate(counts):
        planes = 64 * 2 ** i
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            if bottleneck:
                s[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                s[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                s[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                _bn(s, f"{p}.bn1", planes), _bn(s, f"{p}.bn2", planes), _bn(s, f"{p}.bn3", planes * 4)
            else:
                s[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                s[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                _bn(s, f"{p}.bn1", planes), _bn(s, f"{p}.bn2", planes)
            # stages 2-4 start with stride 2; bottleneck layer1 changes the channel count.
            if j == 0 and (i > 0 or inplanes != planes * expansion):
                s[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                _bn(s, f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    s["fc.weight"] = (1000, 512 * expansion)
    s["fc.bias"] = (1000,)
    return s


def torchvision_vgg16_shapes() -> dict[str, tuple[int, ...]]:
    """Keys/shapes of torchvision's vgg16: 13 convs in ``features`` (ReLUs and pools between)."""
    convs = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
             (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512),
             (26, 512, 512), (28, 512, 512)]
    s: dict[str, tuple[int, ...]] = {}
    for idx, cin, cout in convs:
        s[f"features.{idx}.weight"] = (cout, cin, 3, 3)
        s[f"features.{idx}.bias"] = (cout,)
    for idx, cin, cout in [(0, 512 * 7 * 7, 4096), (3, 4096, 4096), (6, 4096, 1000)]:
        s[f"classifier.{idx}.weight"] = (cout, cin)
        s[f"classifier.{idx}.bias"] = (cout,)
    return s


def fake_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(v, generator=g))
            for k, v in shapes.items()}


def expected_shapes(name: str) -> dict[str, tuple[int, ...]]:
    return torchvision_vgg16_shapes() if name == "vgg16" else torchvision_resnet_shapes(int(name[6:]))


# ---------------------------------------------------------------- shapes and grid
@pytest.mark.parametrize("arch,backbone,stride", list(_combos()))
def test_output_shapes_every_arch_and_backbone(arch, backbone, stride):
    torch.manual_seed(0)
    model = build_model(arch, backbone, K, width=0.125, output_stride=stride)
    assert model.output_stride == stride and model.num_classes == K
    x = torch.randn(2, 3, 41, 30)
    out = model(x)
    grid = (math.ceil(41 / stride), math.ceil(30 / stride))
    assert out["out"].shape == (2, K, *grid)
    if arch == "attention":
        assert len(out["scales"]) == 3 and all(z.shape == (2, K, *grid) for z in out["scales"])
        assert out["attention"].shape == (2, 3, *grid)
    else:
        assert set(out) == {"out"}


@pytest.mark.parametrize("backbone,stride", [("resnet18", 8), ("resnet50", 8), ("resnet34", 16),
                                             ("resnet101", 16), ("vgg16", 8)])
@pytest.mark.parametrize("size", [(33, 64), (65, 17), (100, 81)])
def test_output_grid_is_ceil_of_size_over_stride(backbone, stride, size):
    model = build_model("deeplabv2", backbone, 3, width=0.0625, output_stride=stride).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *size))["out"]
    assert out.shape[-2:] == tuple(math.ceil(n / stride) for n in size)


def test_321_crop_gives_deeplab_41_grid():
    model = build_model("attention", "vgg16", 2, width=0.0625).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 321, 321))
    assert out["out"].shape[-2:] == (41, 41)


def test_dilation_plan_and_aspp_rates():
    r8 = build_backbone("resnet50", width=0.0625, output_stride=8)
    r16 = build_backbone("resnet50", width=0.0625, output_stride=16)
    assert {b.conv2.dilation for b in r8.layer3} == {(2, 2)} and {b.conv2.dilation for b in r8.layer4} == {(4, 4)}
    assert {b.conv2.dilation for b in r16.layer3} == {(1, 1)} and {b.conv2.dilation for b in r16.layer4} == {(2, 2)}
    assert r16.layer3[0].conv2.stride == (2, 2) and r8.layer3[0].conv2.stride == (1, 1)
    vgg = build_backbone("vgg16", width=0.0625)
    dil = {i: m.dilation for i, m in enumerate(vgg.features) if isinstance(m, nn.Conv2d)}
    assert [i for i, d in dil.items() if d == (2, 2)] == [24, 26, 28]
    pools = [(m.kernel_size, m.stride) for m in vgg.features if isinstance(m, nn.MaxPool2d)]
    assert pools == [(3, 2)] * 3 + [(3, 1)] * 2
    for stride, rates in ((8, (6, 12, 18, 24)), (16, (3, 6, 9, 12))):
        m = build_model("deeplabv2", "resnet18", K, width=0.125, output_stride=stride)
        assert tuple(c.dilation[0] for c in m.classifier.branches) == rates == ASPP_RATES[stride]


def test_width_multiplier_scales_channels_keeps_names():
    small = build_backbone("resnet18", width=0.25)
    full = build_backbone("resnet18")
    assert small.conv1.out_channels == 16 and small.out_channels == 128 and full.out_channels == 512
    assert list(small.state_dict()) == list(full.state_dict())
    assert build_backbone("resnet101", width=0.125).out_channels == 256


# ---------------------------------------------------------------- torchvision names / loading
@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_keys_are_torchvision_minus_head(name):
    shapes = expected_shapes(name)
    head = "classifier." if name == "vgg16" else "fc."
    want = {k: v for k, v in shapes.items() if not k.startswith(head)}
    got = {k: tuple(v.shape) for k, v in build_backbone(name).state_dict().items()}
    assert got == want


@pytest.mark.parametrize("name", BACKBONES)
def test_imagenet_request_loads_fake_torchvision_checkpoint_strictly(name, monkeypatch):
    fake = fake_state_dict(expected_shapes(name))
    urls = []

    def fake_download(url, **kwargs):
        urls.append(url)
        return fake

    monkeypatch.setattr(hub, "load_state_dict_from_url", fake_download)
    model = build_model("deeplabv2", name, K, pretrained="imagenet")
    assert len(urls) == 1 and urls[0].startswith("https://download.pytorch.org/models/" + name + "-")
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in fake.items() if k in loaded)
    if name == "resnet101":  # full-width shape check while it is built
        with torch.no_grad():
            assert model.eval()(torch.zeros(1, 3, 33, 33))["out"].shape == (1, K, 5, 5)


def test_local_path_loads_and_missing_or_unexpected_keys_raise(tmp_path):
    fake = fake_state_dict(torchvision_resnet_shapes(18), seed=3)
    path = tmp_path / "resnet18-local.pth"
    torch.save(fake, path)
    model = build_model("attention", "resnet18", K, pretrained=path)
    assert torch.equal(model.base.backbone.layer4[1].bn2.running_var, fake["layer4.1.bn2.running_var"])

    backbone = build_backbone("resnet18")
    missing = {k: v for k, v in fake.items() if k != "layer4.1.bn2.running_var"}
    with pytest.raises(PretrainedWeightsError, match=r"missing keys: \[layer4\.1\.bn2\.running_var\]"):
        load_backbone_state_dict(backbone, missing, "resnet18")
    extra = dict(fake, **{"layer5.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(PretrainedWeightsError, match=r"unexpected keys: \[layer5\.0\.conv1\.weight\]"):
        load_backbone_state_dict(backbone, extra, "resnet18")
    with pytest.raises(PretrainedWeightsError, match="shape mismatch"):
        load_backbone_state_dict(build_backbone("resnet18", width=0.5), fake, "resnet18")
    with pytest.raises(PretrainedWeightsError, match="no such file"):
        build_model("deeplabv2", "resnet18", K, pretrained=tmp_path / "absent.pth")


def test_a_folder_of_torchvision_files_serves_each_backbone(tmp_path):
    """pretrained=<folder>: each network loads its own torchvision file from it (the paper profile has two)."""
    r18 = fake_state_dict(torchvision_resnet_shapes(18), seed=4)
    torch.save(r18, tmp_path / "resnet18-f37072fd.pth")
    model = build_model("deeplabv2", "resnet18", K, pretrained=tmp_path)
    assert torch.equal(model.backbone.conv1.weight, r18["conv1.weight"])
    with pytest.raises(PretrainedWeightsError, match="resnet34-b627a593.pth': no such file"):
        build_model("deeplabv2", "resnet34", K, pretrained=tmp_path)


def test_offline_imagenet_request_says_how_to_get_the_file(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(hub, "load_state_dict_from_url", offline)
    with pytest.raises(PretrainedWeightsError) as info:
        build_model("deeplabv2", "resnet50", K, pretrained="imagenet")
    msg = str(info.value)
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in msg
    assert "checkpoints" in msg and "pretrained='/path/to/resnet50-0676ba61.pth'" in msg


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="output_stride"):
        build_model("deeplabv2", "vgg16", K, output_stride=16)
    with pytest.raises(ValueError, match="output_stride"):
        build_model("deeplabv2", "resnet18", K, output_stride=32)
    with pytest.raises(ValueError, match="arch"):
        build_model("pspnet", "resnet18", K)
    with pytest.raises(ValueError, match="backbone"):
        build_model("deeplabv2", "resnet152", K)
    with pytest.raises(ValueError, match="width"):
        build_model("deeplabv2", "resnet18", K, width=0.5, pretrained="imagenet")


# ---------------------------------------------------------------- attention fusion
def test_attention_weights_softmax_and_fusion():
    torch.manual_seed(0)
    model = build_model("attention", "resnet18", K, width=0.125).eval()
    x = torch.randn(2, 3, 57, 44)
    with torch.no_grad():
        out = model(x)
        base = model.base(x)["out"]
    att = out["attention"]
    assert (att >= 0).all() and torch.allclose(att.sum(1), torch.ones(2, 8, 6), atol=1e-6)
    manual = torch.zeros_like(out["out"])
    for s in range(3):
        manual += att[:, s:s + 1] * out["scales"][s]
    assert torch.allclose(out["out"], manual, atol=1e-5)
    assert torch.allclose(out["scales"][0], base, atol=1e-6)  # scale 1 is the plain model
    assert not torch.allclose(out["scales"][1], out["scales"][0])


def test_parameter_groups_partition_and_gradients_flow():
    torch.manual_seed(0)
    model = build_model("attention", "vgg16", K, width=0.0625)
    bb = {id(p) for p in model.backbone_parameters()}
    cls = {id(p) for p in model.classifier_parameters()}
    assert bb and cls and not bb & cls and bb | cls == {id(p) for p in model.parameters()}
    assert id(model.attention[0].weight) in cls and id(model.base.neck.fc6.weight) in cls
    out = model(torch.randn(2, 3, 40, 40))
    (out["out"].logsumexp(1).mean() + sum(z.mean() for z in out["scales"])).backward()
    assert model.base.backbone.features[0].weight.grad.abs().sum() > 0
    assert model.attention[0].weight.grad.abs().sum() > 0


def test_deterministic_init_under_manual_seed():
    def build(seed):
        torch.manual_seed(seed)
        return build_model("attention", "resnet34", K, width=0.125).state_dict()
    a, b, c = build(0), build(0), build(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["base.backbone.conv1.weight"], c["base.backbone.conv1.weight"])


def test_small_cpu_config_builds_and_trains_a_step():
    kw = small_model_kwargs()
    assert kw == {"arch": "deeplabv2", "backbone": "resnet18", "width": 0.25, "output_stride": 8}
    torch.manual_seed(0)
    model = build_model(num_classes=K, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, K, (2, 8, 8))
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x)["out"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- real torchvision (where installed)
@pytest.mark.parametrize("name", BACKBONES)
def test_real_torchvision_state_dict_loads_strictly(name):
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    reference = getattr(tvm, name)(weights=None).eval()
    backbone = build_backbone(name)
    load_backbone_state_dict(backbone, reference.state_dict(), name)
    backbone.eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        if name == "vgg16":  # the first two convs precede DeepLab's pooling changes
            assert torch.allclose(backbone.features[:4](x), reference.features[:4](x), atol=1e-5)
        else:  # conv1..layer2 are undilated: identical to torchvision
            ours = backbone.layer2(backbone.layer1(backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))))
            theirs = reference.layer2(reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))
            assert torch.allclose(ours, theirs, atol=1e-4)


# ------------------------------------------------------------------ ASPP rates against the grid
def _brute_force_coverage(rate: int, h: int, w: int) -> float:
    """Count, for every output cell, the off-centre taps of a dilated 3x3 kernel that read inside the map."""
    inside = 0
    for y in range(h):
        for x in range(w):
            for dy in (-rate, 0, rate):
                for dx in (-rate, 0, rate):
                    if (dy or dx) and 0 <= y + dy < h and 0 <= x + dx < w:
                        inside += 1
    return inside / (8 * h * w)


@pytest.mark.parametrize("rate,h,w", [(1, 3, 3), (2, 5, 7), (6, 41, 41), (12, 17, 17), (10, 12, 20), (24, 41, 30)])
def test_aspp_coverage_matches_brute_force(rate, h, w):
    from lipkit.models import aspp_coverage

    assert aspp_coverage(rate, h, w) == pytest.approx(_brute_force_coverage(rate, h, w), abs=1e-12)


def test_paper_rates_18_and_24_read_only_padding_on_a_129_crop():
    from lipkit.models import aspp_coverage
    from lipkit.models.deeplab import grid_size

    assert grid_size(129) == 17 and grid_size(321) == 41
    assert aspp_coverage(18, 17) == 0.0 and aspp_coverage(24, 17) == 0.0 and aspp_coverage(6, 17) > 0.5
    # ... so such a branch is exactly its own centre tap, a 1x1 convolution
    conv = nn.Conv2d(8, 5, 3, padding=18, dilation=18)
    x = torch.randn(2, 8, 17, 17)
    centre = nn.functional.conv2d(x, conv.weight[:, :, 1:2, 1:2], conv.bias)
    torch.testing.assert_close(conv(x), centre)


def test_scaled_aspp_rates_keep_the_papers_share_of_the_grid():
    from lipkit.models import scaled_aspp_rates

    assert scaled_aspp_rates(321) == ASPP_RATES[8]
    assert scaled_aspp_rates(129) == (2, 5, 7, 10)  # 6/12/18/24 x 16/40 = 2.4/4.8/7.2/9.6
    assert scaled_aspp_rates(17) == (1,)  # a 3 x 3 grid: the four rates round to one branch
    model = build_model("deeplabv2", "resnet18", 20, width=0.25, aspp_rates=(2, 5, 7, 10))
    assert model.classifier.rates == (2, 5, 7, 10)
    assert [b.dilation for b in model.classifier.branches] == [(2, 2), (5, 5), (7, 7), (10, 10)]
    assert build_model("deeplabv2", "resnet18", 20, width=0.25).classifier.rates == ASPP_RATES[8]


def test_aspp_rates_refused_where_there_is_no_aspp_or_a_rate_below_1():
    from lipkit.training import TrainConfig

    with pytest.raises(ValueError, match="aspp_rates"):
        build_model("deeplabv2", "vgg16", 20, width=0.125, aspp_rates=(2, 4))
    with pytest.raises(ValueError, match="aspp_rates"):
        build_model("deeplabv2", "resnet18", 20, width=0.25, aspp_rates=(0, 4))
    for model in ({"backbone": "vgg16", "aspp_rates": [2, 4]}, {"backbone": "resnet18", "aspp_rates": [0]},
                  {"backbone": "resnet18", "aspp_rates": []}):
        with pytest.raises(ValueError, match="model.aspp_rates"):
            TrainConfig.from_dict({"model": model}).validate()
