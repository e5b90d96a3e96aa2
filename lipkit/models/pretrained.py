"""ImageNet initialisation of backbones from torchvision's official checkpoints.

``pretrained="imagenet"`` downloads through ``torch.hub.load_state_dict_from_url`` (cached under
``torch.hub.get_dir()/checkpoints``); a file path loads a local copy of the same file, and a folder
path loads the file of torchvision's name in it (``resnet101-63fe2227.pth``, ``vgg16-397923af.pth``),
so one folder serves both networks of a profile. The
classification head (``fc.*`` for ResNet, ``classifier.*`` for VGG) is dropped and everything
else must match the backbone exactly (strict loading); any other difference raises
``PretrainedWeightsError`` listing the missing and unexpected keys.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import hub, nn

__all__ = ["HEAD_PREFIXES", "IMAGENET_URLS", "PretrainedWeightsError", "fetch_imagenet_state_dict",
           "imagenet_filename", "load_backbone_state_dict", "load_pretrained"]

# torchvision's ImageNet checkpoints (IMAGENET1K_V1 weights of torchvision.models; the file name
# carries the first hex digits of the SHA-256, which torch.hub checks).
IMAGENET_URLS: dict[str, str] = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}

# backbone name -> key prefix of the ImageNet classification head, removed before loading.
HEAD_PREFIXES: dict[str, str] = {
    "resnet18": "fc.", "resnet34": "fc.", "resnet50": "fc.", "resnet101": "fc.",
    "vgg16": "classifier.",
}


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights could not be fetched, read, or matched to the backbone."""


def _how_to_get(name: str) -> str:
    url = IMAGENET_URLS[name]
    filename = url.rsplit("/", 1)[-1]
    cache = Path(hub.get_dir()) / "checkpoints" / filename
    return (f"Download {url} on a machine with network access, then either put it at {cache} "
            f"(torch.hub's cache; TORCH_HOME moves it) or pass pretrained='/path/to/{filename}'.")


def fetch_imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ``name`` via torch.hub (download once, then cache)."""
    if name not in IMAGENET_URLS:
        raise ValueError(f"backbone={name!r}: no ImageNet weights; expected one of {sorted(IMAGENET_URLS)}")
    url = IMAGENET_URLS[name]
    try:
        return hub.load_state_dict_from_url(url, map_location="cpu", progress=True, check_hash=True)
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, refused connections
        raise PretrainedWeightsError(
            f"could not download ImageNet weights for {name} from {url} ({exc}). {_how_to_get(name)}"
        ) from exc


def _read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PretrainedWeightsError(f"pretrained={str(path)!r}: no such file. "
                                     f"Pass 'imagenet', a torchvision checkpoint path, or a folder holding {imagenet_filename(name)}. {_how_to_get(name)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors differ across torch versions
        raise PretrainedWeightsError(f"{path}: not a readable torch state dict ({exc})") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path}: expected a state dict (parameter name -> tensor), "
                                     f"got {type(state).__name__}")
    return dict(state)


def _key_list(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_backbone_state_dict(backbone: nn.Module, state_dict: Mapping[str, torch.Tensor],
                             name: str) -> None:
    """Load a torchvision classification state dict into ``backbone`` minus its head, strictly."""
    if name not in HEAD_PREFIXES:
        raise ValueError(f"backbone={name!r}: expected one of {sorted(HEAD_PREFIXES)}")
    prefix = HEAD_PREFIXES[name]
    state = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"{name}: checkpoint does not match the backbone (after dropping '{prefix}*'). "
            f"missing keys: [{_key_list(missing)}]; unexpected keys: [{_key_list(unexpected)}]")
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise PretrainedWeightsError(f"{name}: shape mismatch (is width 1.0?): {_key_list(wrong)}")
    backbone.load_state_dict(state, strict=True)


def imagenet_filename(name: str) -> str:
    """torchvision's file name of the ImageNet checkpoint of ``name`` (what a local folder must hold)."""
    if name not in IMAGENET_URLS:
        raise ValueError(f"backbone={name!r}: no ImageNet weights; expected one of {sorted(IMAGENET_URLS)}")
    return IMAGENET_URLS[name].rsplit("/", 1)[-1]


def load_pretrained(backbone: nn.Module, name: str, pretrained: str | Path) -> None:
    """Initialise ``backbone`` from "imagenet" (download/cache), a checkpoint file, or a folder of them."""
    if isinstance(pretrained, str) and pretrained == "imagenet":
        state = fetch_imagenet_state_dict(name)
    else:
        path = Path(pretrained).expanduser()
        state = _read_state_dict(path / imagenet_filename(name) if path.is_dir() else path, name)
    load_backbone_state_dict(backbone, state, name)
