"""The PyTorch reference for the weight-conversion tests: timm's C-GhostNet with a
fixed seed and non-trivial BatchNorm statistics, and the images to compare on."""

import sys

import numpy as np
import pytest

MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")
TOLERANCE = 1e-4
_CACHE = {}


def import_torch_timm():
    # Importing triton (which timm -> torchvision -> torch._dynamo pulls in) after
    # TensorFlow crashes the process (triton 3.8 and TF 2.21 both load LLVM); timm
    # works without it, so hide it when TensorFlow came first.
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None
    torch = pytest.importorskip(
        "torch", reason="the conversion tests need PyTorch (extra: convert)"
    )
    timm = pytest.importorskip("timm", reason="the conversion tests build timm's GhostNet")
    return torch, timm


def seeded_timm_model(name, seed=0):
    """timm ``name`` in eval mode, seeded; every BatchNorm gets random affine parameters
    and running statistics (untrained BN would hide mapping errors) and the classifier
    is scaled so that logits are O(1-10)."""
    key = (name, seed)
    if key in _CACHE:
        return _CACHE[key]
    torch, timm = import_torch_timm()
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    randomize_batchnorm(model, seed + 1)
    with torch.no_grad():
        if hasattr(model, "classifier") and hasattr(model.classifier, "weight"):
            model.classifier.weight.mul_(20.0)
    _CACHE[key] = model
    return model


def randomize_batchnorm(model, seed):
    """Gives every BatchNorm of ``model`` random affine parameters and running statistics."""
    torch, _ = import_torch_timm()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
    return model


def save_checkpoint(model, path):
    """Saves a state dict as the official release does (a plain ``torch.save``)."""
    torch, _ = import_torch_timm()
    torch.save(model.state_dict(), path)
    return path


def torch_outputs(model, images, features=False):
    """Logits (or the last feature map, NHWC) of ``model`` on 0-255 RGB NHWC ``images``."""
    torch, _ = import_torch_timm()
    x = torch.from_numpy(((images / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        out = model.forward_features(x) if features else model(x)
    out = out.numpy()
    return out.transpose(0, 2, 3, 1) if features else out


def reference_images(imagenette_dir, per_class=1, size=224, n_random=2):
    """One validation image per Imagenette class, resized to ``size``, plus random noise."""
    from PIL import Image

    images = []
    for class_dir in sorted(p for p in (imagenette_dir / "val").iterdir() if p.is_dir()):
        for path in sorted(class_dir.iterdir())[:per_class]:
            with Image.open(path) as image:
                image = image.convert("RGB").resize((size, size), Image.BILINEAR)
                images.append(np.asarray(image, "float32"))
    noise = np.random.default_rng(0).uniform(0, 255, (n_random, size, size, 3))
    return np.concatenate([np.stack(images), noise.astype("float32")])


def assert_parity(reference, actual, top5=True):
    diff = np.abs(reference - actual).max()
    assert diff <= TOLERANCE, f"max |difference| {diff:.3g} > {TOLERANCE}"
    if top5:
        ref_top = np.argsort(-reference, axis=1)[:, :5]
        act_top = np.argsort(-actual, axis=1)[:, :5]
        np.testing.assert_array_equal(ref_top, act_top)
    return diff
